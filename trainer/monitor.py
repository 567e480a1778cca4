"""What a training run reports while it runs: progress, CSV log, TensorBoard.

Input: per-step loss, learning rate and samples seen, from the main rank.
Output:
    OUTPUT/train_log.csv    step, loss (mean since the previous row), lr, samples_per_s
    OUTPUT/tensorboard/     train/loss, train/lr, train/samples_per_s (when the tensorboard
                            package is installed and cfg.tensorboard)
    stderr                  a tqdm bar (samples, samples/s, loss, ETA) on a terminal; plain log
                            lines every log_every steps otherwise
A resumed run keeps the rows and events up to its start step and appends after them.
Nothing is dropped here.
"""

from __future__ import annotations

import csv
import logging
import os
import sys
import time
from typing import Any, Optional

logger = logging.getLogger(__name__)

LOG_FILE = "train_log.csv"
TB_DIR = "tensorboard"
CSV_HEADER = ["step", "loss", "lr", "samples_per_s"]


class CsvLog:
    """``train_log.csv`` rows, flushed as written so a running job can be watched. From a
    ``start_step`` > 0 the rows up to it are kept and new rows appended."""

    def __init__(self, path: str, start_step: int = 0) -> None:
        kept = _rows_up_to(path, start_step) if start_step > 0 else []
        self._fh = open(path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._fh)
        self._writer.writerow(CSV_HEADER)
        self._writer.writerows(kept)
        self._fh.flush()

    def write(self, step: int, loss: float, lr: float, samples_per_s: float) -> None:
        self._writer.writerow([step, f"{loss:.6f}", f"{lr:.6g}", f"{samples_per_s:.1f}"])
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _rows_up_to(path: str, step: int) -> list[list[str]]:
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    return [r for r in rows if r and int(r[0]) <= step]


def tensorboard_writer(log_dir: str, start_step: int = 0) -> Optional[Any]:
    """A ``SummaryWriter`` (events after ``start_step`` purged on resume), or None without the
    tensorboard package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch's module imports the tensorboard package
        logger.warning("TensorBoard logging off: %s (pip install tensorboard)", e)
        return None
    return SummaryWriter(log_dir=log_dir, purge_step=start_step + 1 if start_step else None)


class RunMonitor:
    """Progress bar or log lines, CSV rows and TensorBoard scalars for one run.

    ``samples_per_step``: samples per optimizer step over all ranks (batch x accum x ranks).
    Disabled (no files, no output) on ranks other than the main one.
    """

    def __init__(self, output: str, steps: int, samples_per_step: int, log_every: int,
                 start_step: int = 0, tensorboard: bool = True, enabled: bool = True) -> None:
        self.steps, self.samples_per_step, self.log_every = steps, samples_per_step, log_every
        self.enabled = enabled
        self.csv = CsvLog(os.path.join(output, LOG_FILE), start_step) if enabled else None
        self.tb = (tensorboard_writer(os.path.join(output, TB_DIR), start_step)
                   if enabled and tensorboard else None)
        self.bar = self._bar(start_step) if enabled and sys.stderr.isatty() else None
        self._window: list[float] = []
        self._window_start = self._run_start = time.perf_counter()
        self._start_step = start_step

    def _bar(self, start_step: int) -> Any:
        from tqdm import tqdm

        return tqdm(total=self.steps * self.samples_per_step,
                    initial=start_step * self.samples_per_step, unit="sample",
                    dynamic_ncols=True, smoothing=0.1)

    def pause(self) -> None:
        """Restart the throughput clock (after a checkpoint save, so it is not counted)."""
        self._window_start = time.perf_counter()

    def update(self, step: int, loss: float, lr: float) -> None:
        if not self.enabled:
            return
        self._window.append(loss)
        if self.bar is not None:
            self.bar.update(self.samples_per_step)
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", refresh=False)
        if (self.log_every and step % self.log_every == 0) or step == self.steps:
            self._log_row(step, lr)

    def _log_row(self, step: int, lr: float) -> None:
        now = time.perf_counter()
        rate = len(self._window) * self.samples_per_step / max(now - self._window_start, 1e-9)
        loss = sum(self._window) / len(self._window)
        self.csv.write(step, loss, lr, rate)
        if self.tb is not None:
            for name, value in (("loss", loss), ("lr", lr), ("samples_per_s", rate)):
                self.tb.add_scalar(f"train/{name}", value, step)
        if self.bar is None:
            done = step - self._start_step
            eta = (now - self._run_start) / max(done, 1) * (self.steps - step)
            logger.info("step %d/%d loss %.4f lr %.3g %.1f samples/s eta %s", step, self.steps,
                        loss, lr, rate, _clock(eta))
        self._window, self._window_start = [], time.perf_counter()

    def close(self) -> None:
        for thing in (self.bar, self.csv, self.tb):
            if thing is not None:
                thing.close()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
