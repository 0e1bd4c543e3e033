"""How many windows go through the engine per call when ``batch_size`` is automatic.

:func:`~vidcam.video.memory.auto_batch_size` bounds the batch by the input budget and the free
memory. On an accelerator that bound is the batch. On the CPU a larger batch is not faster per
window for every model: measured on 2 cores (ms per window, batch 1 / 2 / 4 / 8), r3d_18 at
112² 266 / 231 / 284 / 290, the bundled sample model 9.0 / 4.2 / 4.3 / 7.6, but x3d_m at 224²
432 / 565 / 678 / 890 and x3d_s 79 / 95 / 133 (depthwise convolutions: a larger batch only
spills the caches). So on the CPU :class:`BatchPlan` tries both one window and the bound
(capped at the thread count, but at least 2) on the first windows of the video and keeps the
faster per window; a call that ran out of memory caps it for the rest of the video. Every
window's explanation is the same whatever the batch.
"""

from __future__ import annotations

import math
import time

import torch

#: calls of each size timed before the choice (after one untimed warm-up call of one window)
TRIALS = 2


class BatchPlan:
    """Windows per engine call: ``size()`` before each call, ``done(windows, seconds)`` after.

    ``upper``: the most windows one call may take. ``tune``: try 1 and ``upper`` windows per
    call (``TRIALS`` timed calls each, after a warm-up call) and keep the faster per window;
    otherwise every call takes ``upper``.
    """

    clock = staticmethod(time.perf_counter)

    def __init__(self, upper: int, *, tune: bool) -> None:
        self.upper = max(1, int(upper))
        self.chosen = self.upper
        tune = tune and self.upper > 1
        # (windows, timed?): an untimed warm-up call of one window, then the timed trials
        self._trials = [(1, False)] + [(self.upper, True), (1, True)] * TRIALS if tune else []
        self._best: dict[int, float] = {}

    @classmethod
    def auto(cls, upper: int, device: torch.device | str) -> BatchPlan:
        """The automatic plan: on the CPU, one window per call timed against
        ``min(upper, max(2, threads))``; on an accelerator, ``upper`` itself."""
        if torch.device(device).type != "cpu":
            return cls(upper, tune=False)
        return cls(min(upper, max(2, torch.get_num_threads())), tune=True)

    @property
    def tuning(self) -> bool:
        return bool(self._trials)

    def size(self) -> int:
        """Windows for the next engine call."""
        return self._trials[0][0] if self._trials else self.chosen

    def cap(self, n: int) -> None:
        """At most ``n`` windows per call from now on (a larger call ran out of memory)."""
        n = max(1, int(n))
        self.upper, self.chosen = min(self.upper, n), min(self.chosen, n)
        self._trials = [(min(size, n), timed) for size, timed in self._trials]

    def done(self, windows: int, seconds: float) -> None:
        """Record the call just made: ``windows`` windows in ``seconds``."""
        if not self._trials:
            return
        size, timed = self._trials.pop(0)
        if timed and windows == size:
            self._best[size] = min(self._best.get(size, math.inf), seconds / windows)
        if not self._trials and self._best:
            self.chosen = min(self._best, key=self._best.__getitem__)
