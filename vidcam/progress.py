"""A tiny progress reporter (frames done / total, rate, ETA) on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Report progress of ``total`` units of work; silent when ``enabled`` is False.

    Updates are throttled to ``min_interval`` seconds. :meth:`close` ends the line: it rewrites
    it only if the last update was not shown, so the final state appears once; closing twice
    writes nothing more.
    """

    def __init__(
        self,
        total: int | None,
        *,
        unit: str = "frames",
        desc: str = "",
        enabled: bool = True,
        stream: TextIO | None = None,
        min_interval: float = 0.5,
    ) -> None:
        self.total = total
        self.unit = unit
        self.desc = desc
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.min_interval = min_interval
        self.done = 0
        self._start = time.perf_counter()
        self._last = 0.0
        self._shown: int | None = None  # ``done`` when the line was last written
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and now - self._last >= self.min_interval:
            self._last = now
            self._write(final=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.enabled:
            return
        if self._shown == self.done:
            self.stream.write("\n")
            self.stream.flush()
        else:
            self._write(final=True)

    def line(self) -> str:
        elapsed = time.perf_counter() - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        head = f"{self.desc}: " if self.desc else ""
        if self.total:
            pct = 100.0 * self.done / self.total
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            eta_s = f"{eta:5.0f}s" if eta == eta else "    ?"
            return (
                f"{head}{self.done}/{self.total} {self.unit} ({pct:5.1f}%) "
                f"{rate:6.1f} {self.unit}/s ETA {eta_s}"
            )
        return f"{head}{self.done} {self.unit} {rate:6.1f} {self.unit}/s"

    def _write(self, *, final: bool) -> None:
        self._shown = self.done
        end = "\n" if final else ""
        self.stream.write("\r" + self.line() + end)
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
