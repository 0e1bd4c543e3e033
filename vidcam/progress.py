"""Progress on stderr (done / total, rate, ETA) — a thin face over :mod:`tqdm`.

``Progress(total, unit="frames", desc="explaining", enabled=not quiet)``: ``update(n)``,
``close()`` (idempotent), or use it as a context manager; :meth:`Progress.rate` and
:meth:`Progress.eta` (shown by :func:`clock`) for lines of one's own, written above the bar
with :meth:`Progress.write`. On a terminal the bar redraws in place; when stderr is not a
terminal (logs, CI) it writes a plain line at most every 10 s and a final one, never control
characters beyond the line ends.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


class Progress:
    """Report progress of ``total`` units of work (None: unknown); silent when not ``enabled``."""

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
        self.enabled = enabled
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self._closed = False
        stream = stream if stream is not None else sys.stderr
        self._stream = stream
        tty = bool(getattr(stream, "isatty", lambda: False)())
        self._bar = None
        if enabled:
            self._bar = tqdm(
                total=total or None,
                unit=f" {unit}",
                desc=desc or None,
                file=stream if tty else _Lines(stream),
                mininterval=min_interval if tty else 10.0,
                dynamic_ncols=tty,
                ncols=None if tty else 100,
                ascii=not tty,
                leave=True,
                smoothing=0.1,
            )

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def rate(self, done: int | None = None) -> float:
        """Units per second since the start (``done``: count these instead of :attr:`done`)."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (self.done if done is None else done) / elapsed

    def eta(self, done: int | None = None) -> float | None:
        """Seconds until ``total`` at :meth:`rate`; None when the total is unknown or nothing
        is done yet."""
        done = self.done if done is None else done
        if self.total is None or done <= 0:
            return None
        return (self.total - done) / self.rate(done)

    def write(self, line: str) -> None:
        """``line`` on the stream, above the bar; nothing when not ``enabled``."""
        if self.enabled:
            tqdm.write(line, file=self._stream)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def clock(seconds: float | None) -> str:
    """``seconds`` as H:MM:SS ("?" when unknown)."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class _Lines:
    """A file for tqdm when stderr is not a terminal: every redraw becomes one plain line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, s: str) -> None:
        text = s.replace("\r", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()
