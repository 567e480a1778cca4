"""trainer.monitor: CSV rows (kept on resume), TensorBoard events, plain progress lines."""

import csv
import logging
import os
import sys

from trainer.monitor import CsvLog, RunMonitor, tensorboard_writer


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_csv_keeps_rows_up_to_the_resumed_step(tmp_path):
    path = str(tmp_path / "train_log.csv")
    log = CsvLog(path)
    for step in (10, 20, 30):
        log.write(step, 1.0, 0.1, 5.0)
    log.close()
    log = CsvLog(path, start_step=20)
    log.write(30, 0.5, 0.1, 5.0)
    log.close()
    assert [(r["step"], r["loss"]) for r in _rows(path)] == [
        ("10", "1.000000"), ("20", "1.000000"), ("30", "0.500000")]


def test_monitor_logs_rows_events_and_plain_lines(tmp_path, caplog):
    monitor = RunMonitor(str(tmp_path), steps=4, samples_per_step=8, log_every=2)
    assert monitor.bar is None  # pytest's stderr is not a terminal: plain lines
    with caplog.at_level(logging.INFO, logger="trainer.monitor"):
        for step in range(1, 5):
            monitor.update(step, loss=2.0 / step, lr=0.01)
    monitor.close()
    rows = _rows(tmp_path / "train_log.csv")
    assert [r["step"] for r in rows] == ["2", "4"] and float(rows[0]["loss"]) == 1.5
    assert float(rows[0]["samples_per_s"]) > 0
    assert "step 2/4 loss 1.5000" in caplog.text and "samples/s eta 0:00:0" in caplog.text
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "tensorboard"))


def test_disabled_monitor_writes_nothing(tmp_path):
    monitor = RunMonitor(str(tmp_path), 2, 8, 1, enabled=False)
    monitor.update(1, 1.0, 0.1)
    monitor.close()
    assert os.listdir(tmp_path) == []


def test_without_tensorboard_package(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with caplog.at_level(logging.WARNING, logger="trainer.monitor"):
        assert tensorboard_writer(str(tmp_path)) is None
    assert "pip install tensorboard" in caplog.text
