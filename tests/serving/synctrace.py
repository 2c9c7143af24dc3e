"""Write -> sync -> acknowledge, checked on the C calls a process made (``synctrace.c``, an LD_PRELOAD shim).

``build_shim`` compiles the shim with gcc into a temporary folder (skipping the test, saying why, without
gcc); a process started with ``shim_environment(...)`` writes one trace file per process. ``check_durability``
then reads the trace and answers, for every acknowledged request id: which ``write`` put its line in a log
segment, which socket send carried its answer, and whether a successful ``fsync``/``fdatasync`` of that same
file began after the write ended and ended before the answer began. Nothing here trusts the Python code under
test: the order comes from the shim's process-wide counter around the real libc calls.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SHIM_SOURCE = Path(__file__).with_name("synctrace.c")
WRITE_CALLS = {"write", "pwrite", "pwrite64", "writev", "send", "sendto", "sendmsg"}
SYNC_CALLS = {"fsync", "fdatasync"}  # durability barriers; sync_file_range is not one


@dataclass(frozen=True)
class Event:
    """One traced libc call: ``begin``/``end`` from one counter per process, around the real call."""

    begin: int
    end: int
    thread: int
    call: str
    fd: int
    result: int
    path: str
    data: bytes

    @property
    def is_socket(self) -> bool:
        return self.path.startswith("socket:")


@dataclass
class Verdict:
    """The outcome of :func:`check_durability`."""

    acknowledged: int
    records_per_sync: Counter = field(default_factory=Counter)  # covering sync (begin) -> records it covered
    uncovered: list[str] = field(default_factory=list)  # acknowledged ids no sync covered in time
    unwritten: list[str] = field(default_factory=list)  # acknowledged ids never written to a segment
    unanswered: list[str] = field(default_factory=list)  # ids whose answer no socket send carried

    @property
    def durable(self) -> bool:
        return self.acknowledged > 0 and not (self.uncovered or self.unwritten or self.unanswered)

    @property
    def largest_group(self) -> int:
        return max(self.records_per_sync.values(), default=0)

    def explain(self) -> str:
        return (
            f"{self.acknowledged} acknowledged; uncovered by a sync between write and answer: "
            f"{len(self.uncovered)} {self.uncovered[:3]}; never written: {len(self.unwritten)} "
            f"{self.unwritten[:3]}; answer not seen: {len(self.unanswered)} {self.unanswered[:3]}; "
            f"records per covering sync: {sorted(self.records_per_sync.values(), reverse=True)[:10]}"
        )


def build_shim(folder: Path) -> Path:
    """Compile ``synctrace.c`` into ``folder`` and return the shared object (skips without gcc)."""
    compiler = shutil.which("gcc")
    if compiler is None:
        pytest.skip("needs gcc to build the LD_PRELOAD shim that records write/sync/send order")
    library = folder / "synctrace.so"
    completed = subprocess.run(
        [
            compiler,
            "-shared",
            "-fPIC",
            "-O2",
            "-Wall",
            "-o",
            str(library),
            str(SHIM_SOURCE),
            "-ldl",
            "-lpthread",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return library


def shim_environment(library: Path, trace_prefix: Path, match: str, sync_delay_us: int = 0) -> dict[str, str]:
    """Variables that make a child process trace its writes to paths containing ``match``, and its sockets."""
    return {
        "LD_PRELOAD": str(library),
        "SYNCTRACE_OUT": str(trace_prefix),
        "SYNCTRACE_MATCH": match,
        "SYNCTRACE_SYNC_DELAY_US": str(sync_delay_us),
    }


def read_trace(trace_prefix: Path) -> dict[int, list[Event]]:
    """Process id -> its events, in counter order (counters are per process: never compare across)."""
    processes: dict[int, list[Event]] = {}
    for path in trace_prefix.parent.glob(trace_prefix.name + ".*"):
        events = []
        for line in path.read_text().splitlines():
            begin, end, thread, call, fd, result, where, data = line.split(" ", 7)
            events.append(
                Event(
                    int(begin),
                    int(end),
                    int(thread),
                    call,
                    int(fd),
                    int(result),
                    where,
                    b"" if data == "-" else bytes.fromhex(data),
                )
            )
        if events:
            processes[int(path.name.rsplit(".", 1)[1])] = sorted(events, key=lambda event: event.begin)
    return processes


def segment_lines(events: list[Event], path_part: str = "segment-") -> dict[str, tuple[str, int]]:
    """request id -> (segment path, end of the write call that completed its line)."""
    written: dict[str, tuple[str, int]] = {}
    pending: dict[str, bytearray] = {}
    for event in events:
        if (
            event.call not in WRITE_CALLS
            or event.is_socket
            or path_part not in event.path
            or event.result <= 0
        ):
            continue
        buffer = pending.setdefault(event.path, bytearray())
        buffer += event.data
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            request_id = str(json.loads(line)["request_id"])
            written.setdefault(request_id, (event.path, event.end))
    return written


def answers(events: list[Event], request_ids: set[str]) -> dict[str, int]:
    """request id -> begin of the first socket send whose bytes carry that id (its acknowledgement)."""
    found: dict[str, int] = {}
    needles = {request_id: request_id.encode() for request_id in request_ids}
    for event in events:
        if event.call not in WRITE_CALLS or not event.is_socket or event.result <= 0:
            continue
        for request_id, needle in needles.items():
            if request_id not in found and needle in event.data:
                found[request_id] = event.begin
    return found


def check_durability(events: list[Event], acknowledged: set[str]) -> Verdict:
    """Is every acknowledged id covered by a successful sync of its segment that began after its write
    ended and ended before its answer began?"""
    written = segment_lines(events)
    answered = answers(events, acknowledged)
    syncs = [event for event in events if event.call in SYNC_CALLS and event.result == 0]
    verdict = Verdict(acknowledged=len(acknowledged))
    for request_id in sorted(acknowledged):
        if request_id not in written:
            verdict.unwritten.append(request_id)
            continue
        if request_id not in answered:
            verdict.unanswered.append(request_id)
            continue
        path, write_end = written[request_id]
        answer_begin = answered[request_id]
        covering = [
            sync for sync in syncs if sync.path == path and sync.begin > write_end and sync.end < answer_begin
        ]
        if not covering:
            verdict.uncovered.append(request_id)
        else:
            verdict.records_per_sync[covering[0].begin] += 1
    return verdict
