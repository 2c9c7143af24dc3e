"""Ingestion resumes where it stopped: a periodic check reads what was appended since, not the whole log."""

from __future__ import annotations

import time
from pathlib import Path

from platform_components.monitoring.store import open_store
from platform_components.serving.predlog import PredictionLog, PredictionRecord, read_records_from


def record(index: int) -> PredictionRecord:
    return PredictionRecord(f"r{index}", "m", "1", time.time(), {"x": [float(index)]}, {"p": [[0.5, 0.5]]})


def test_ingestion_resumes_from_the_saved_position_across_store_restarts(
    tmp_path: Path, store_url: str
) -> None:
    log_dir = tmp_path / "predictions" / "m"
    log = PredictionLog(log_dir, segment_bytes=2_000)  # small segments: the position crosses files
    for index in range(30):
        log.append(record(index))
    with open_store(store_url) as store:
        assert store.ingest_directory(log_dir) == 30
    # Already-ingested bytes are never read again: garbling them cannot break the next ingestion.
    first_segment = sorted(log_dir.glob("segment-*.jsonl"))[0]
    data = first_segment.read_bytes()
    first_segment.write_bytes(b"#" * (data.index(b"\n")) + data[data.index(b"\n") :])
    for index in range(30, 45):
        log.append(record(index))
    log.close()
    with open_store(store_url) as store:
        assert store.ingest_directory(log_dir) == 15
        assert store.ingest_directory(log_dir) == 0
        assert store.prediction_count("m") == 45


def test_reading_stops_at_a_line_still_being_written(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    log.append(record(1))
    log.close()
    [segment] = tmp_path.glob("segment-*.jsonl")
    with segment.open("ab") as handle:
        handle.write(b'{"request_id": "r2", "mod')  # a torn or in-flight append
    read = list(read_records_from(tmp_path))
    assert [item[0].request_id for item in read] == ["r1"]
    assert read[-1][2] == segment.stat().st_size - len(b'{"request_id": "r2", "mod')
