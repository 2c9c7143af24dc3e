"""The prediction log: durability, idempotency, rotation and retention, torn lines, concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from platform_components.errors import ConfigError
from platform_components.serving.predlog import (
    PredictionLog,
    PredictionLogError,
    PredictionRecord,
    read_records,
)


def record(request_id: str, rows: int = 2, payload: str = "x") -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id,
        model="credit-default",
        version="3",
        timestamp=time.time(),
        inputs={"income": [1000.0 * row for row in range(rows)], "purpose": [payload] * rows},
        outputs={"output-1": [[0.9, 0.1]] * rows},
    )


def test_append_then_read_round_trips_records_in_order(tmp_path):
    with PredictionLog(tmp_path) as log:
        assert log.append(record("a")) is True
        assert log.append(record("b", rows=3)) is True
    records = list(read_records(tmp_path))
    assert [item.request_id for item in records] == ["a", "b"]
    assert records[1].row_count == 3
    assert records[1].outputs == {"output-1": [[0.9, 0.1]] * 3}


def test_replayed_request_id_is_stored_once_even_after_reopen(tmp_path):
    with PredictionLog(tmp_path) as log:
        assert log.append(record("same")) is True
        assert log.append(record("same", rows=5)) is False
    with PredictionLog(tmp_path) as reopened:  # the index is rebuilt from the segments
        assert "same" in reopened
        assert reopened.append(record("same")) is False
        assert reopened.append(record("other")) is True
    assert [item.request_id for item in read_records(tmp_path)] == ["same", "other"]
    assert next(iter(read_records(tmp_path))).row_count == 2  # the first write wins


def test_append_is_written_when_it_returns(tmp_path):
    # A child process appends and is SIGKILLed right after `append` returns: the record must be in the file.
    # The page cache survives SIGKILL, so this cannot tell a synced record from a written one; the sync is
    # proven in test_predlog_durability.py.
    script = (
        "import os, signal, sys, time\n"
        "from platform_components.serving.predlog import PredictionLog, PredictionRecord\n"
        "log = PredictionLog(sys.argv[1])\n"
        "log.append(PredictionRecord('durable', 'm', '1', time.time(), {'x': [1]}, {'y': [0.5]}))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=os.getcwd(), timeout=60)
    assert completed.returncode == -9
    assert [item.request_id for item in read_records(tmp_path)] == ["durable"]


def test_segments_rotate_by_size_and_retention_deletes_oldest_whole_segments(tmp_path):
    line_bytes = len(record("r-000").to_json()) + 1
    with PredictionLog(tmp_path, segment_bytes=line_bytes * 3, retention_bytes=line_bytes * 7) as log:
        for number in range(20):
            assert log.append(record(f"r-{number:03d}"))
        assert log.total_bytes <= line_bytes * 7 + line_bytes * 3
        assert "r-000" not in log  # deleted with its segment, so the id is forgotten
        assert "r-019" in log
    segments = sorted(path.name for path in tmp_path.glob("segment-*.jsonl"))
    assert len(segments) >= 3
    for path in tmp_path.glob("segment-*.jsonl"):
        assert path.stat().st_size <= line_bytes * 3
    kept = [item.request_id for item in read_records(tmp_path)]
    assert kept == sorted(kept)  # append order survives rotation
    assert kept[-1] == "r-019"
    assert "r-000" not in kept
    assert (
        sum(path.stat().st_size for path in tmp_path.glob("segment-*.jsonl"))
        <= line_bytes * 7 + line_bytes * 3
    )


def test_torn_last_line_is_skipped_by_readers_and_cut_by_the_next_writer(tmp_path):
    with PredictionLog(tmp_path) as log:
        log.append(record("whole"))
    (segment,) = tmp_path.glob("segment-*.jsonl")
    with segment.open("ab") as handle:
        handle.write(record("torn").to_json().encode()[:40])  # a crash mid-append
    assert [item.request_id for item in read_records(tmp_path)] == ["whole"]
    with PredictionLog(tmp_path) as log:
        assert "torn" not in log
        assert log.append(record("torn")) is True  # the client retried: now it is stored
    assert [item.request_id for item in read_records(tmp_path)] == ["whole", "torn"]
    for line in segment.read_text().splitlines():
        json.loads(line)


def test_corrupt_complete_line_is_reported_with_file_and_line(tmp_path):
    with PredictionLog(tmp_path) as log:
        log.append(record("a"))
    (segment,) = tmp_path.glob("segment-*.jsonl")
    with segment.open("ab") as handle:
        handle.write(b"{not json}\n")
    with pytest.raises(PredictionLogError, match=r"segment-000000000001\.jsonl:2"):
        list(read_records(tmp_path))


def test_concurrent_appends_from_threads_store_each_id_once(tmp_path):
    with PredictionLog(tmp_path, segment_bytes=4096, retention_bytes=10 * 1024 * 1024) as log:
        results: list[bool] = []
        lock = threading.Lock()

        def worker(offset: int) -> None:
            for number in range(50):
                # every id is sent by two threads: exactly one append wins
                outcome = log.append(record(f"id-{(number + offset) % 100}"))
                with lock:
                    results.append(outcome)

        threads = [threading.Thread(target=worker, args=(offset,)) for offset in (0, 50, 0, 50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results.count(True) == 100
    ids = [item.request_id for item in read_records(tmp_path)]
    assert sorted(ids) == sorted(f"id-{number}" for number in range(100))


def test_second_writer_process_is_refused(tmp_path):
    with PredictionLog(tmp_path):
        script = (
            "import sys\nfrom platform_components.serving.predlog import PredictionLog\n"
            "PredictionLog(sys.argv[1])"
        )
        completed = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60
        )
    assert completed.returncode != 0
    assert "already open for writing" in completed.stderr


def test_append_after_close_raises(tmp_path):
    log = PredictionLog(tmp_path)
    log.close()
    with pytest.raises(PredictionLogError, match="closed"):
        log.append(record("late"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"segment_bytes": 0}, "segment_bytes must be > 0"),
        ({"segment_bytes": 100, "retention_bytes": 50}, "retention_bytes"),
    ],
)
def test_bad_sizes_are_config_errors(tmp_path, arguments, message):
    with pytest.raises(ConfigError, match=message):
        PredictionLog(tmp_path, **arguments)


def test_numpy_values_are_stored_as_plain_json(tmp_path):
    import numpy as np

    with PredictionLog(tmp_path) as log:
        log.append(
            PredictionRecord("np", "m", "1", 1.0, {"x": [np.float64(1.5)]}, {"y": [np.array([0.25, 0.75])]})
        )
    (stored,) = read_records(tmp_path)
    assert stored.inputs == {"x": [1.5]}
    assert stored.outputs == {"y": [[0.25, 0.75]]}


def test_reading_a_missing_directory_yields_nothing(tmp_path):
    assert list(read_records(tmp_path / "absent")) == []


def test_concurrent_appends_share_fdatasync_calls(tmp_path, monkeypatch):
    import platform_components.serving.predlog as predlog

    real_fdatasync = os.fdatasync
    syncs = []

    def counting_fdatasync(descriptor: int) -> None:
        syncs.append(descriptor)
        real_fdatasync(descriptor)

    monkeypatch.setattr(predlog.os, "fdatasync", counting_fdatasync)
    with PredictionLog(tmp_path) as log:
        log_descriptor = log._descriptor
        barrier = threading.Barrier(16)

        def worker(offset: int) -> None:
            barrier.wait()
            for number in range(10):
                assert log.append(record(f"g-{offset}-{number}"))

        threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(list(read_records(tmp_path))) == 160
    # Group commit: one sync covered several appends, and there were syncs at all (zero would pass `< 160`).
    # That each append's sync came after its write and before it returned is proven on the C calls in
    # test_predlog_durability.py.
    assert 1 <= len(syncs) < 160
    assert set(syncs) == {log_descriptor}


def test_failed_write_is_not_acknowledged_and_leaves_whole_lines(tmp_path, monkeypatch):
    import errno

    import platform_components.serving.predlog as predlog

    real_write = os.write
    with PredictionLog(tmp_path) as log:
        log.append(record("before"))

        def full_disk(descriptor: int, data) -> int:
            real_write(descriptor, bytes(data)[:10])  # a partial line reaches the file
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(predlog.os, "write", full_disk)
        with pytest.raises(PredictionLogError, match="No space left.*not acknowledged"):
            log.append(record("lost"))
        monkeypatch.setattr(predlog.os, "write", real_write)
        assert "lost" not in log
        assert log.append(record("lost")) is True  # the retry is stored
    assert [item.request_id for item in read_records(tmp_path)] == ["before", "lost"]
