"""Background threads that let decoding and encoding overlap the model and the renderer.

:class:`Prefetch` runs an iterator (the decoder) ahead of its consumer; :class:`WriteBehind`
runs calls (the encoder's ``write``) behind their caller. Both keep order, hold at most
``depth`` items, and re-raise an error of the thread in the caller. :func:`torch_threads` caps
PyTorch's own CPU threads while the work on small tensors (pass 2's maps) shares the cores with
the decoder and the encoder.

Both sides of every queue poll (``timeout=_POLL``) instead of sleeping until notified: a
signal handler that raises (Ctrl-C, SIGTERM, SIGHUP in :mod:`vidcam.cli`) can interrupt
``Queue.put`` between waking a waiter and unlisting it, and CPython's ``Condition`` then spends
the next notification on that stale waiter (a lost wake-up: the consumer slept forever with the
end marker in the queue). On the error path nobody waits on a thread for long: they are daemons.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

_POLL = 0.1  # seconds between looks at a queue
_GIVE_UP = 10.0  # seconds an error path waits for a thread to finish its current item


class Prefetch:
    """Runs an iterator in a background thread, up to ``depth`` items ahead (decoding overlaps
    the model and the renderer). Errors re-raise in the consumer; ``close`` stops the thread."""

    _END = object()

    def __init__(self, it: Iterator[Any], depth: int = 8) -> None:
        self._it = it
        self._q: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidcam-decode", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._it:
                if not self._put((item, None)):
                    return
            self._put((self._END, None))
        except BaseException as exc:  # handed to the consumer, re-raised there
            self._put((self._END, exc))
        finally:
            close = getattr(self._it, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                item, exc = self._q.get(timeout=_POLL)
            except queue.Empty:
                if not self._thread.is_alive() and self._q.empty():
                    raise RuntimeError("the decoding thread ended without an end marker") from None
                continue
            if exc is not None:
                raise exc
            if item is self._END:
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(_GIVE_UP)


class WriteBehind:
    """Calls ``fn(*args)`` in a background thread, in order, up to ``depth`` calls behind (the
    encoder works while the next frame renders). An error in ``fn`` re-raises in the caller."""

    def __init__(self, fn: Callable[..., Any], depth: int = 8) -> None:
        self._fn = fn
        self._q: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidcam-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._abort.is_set():
            try:
                args = self._q.get(timeout=_POLL)
            except queue.Empty:
                continue
            if args is None:
                return
            if self._error is None:
                try:
                    self._fn(*args)
                except BaseException as exc:  # re-raised in the caller
                    self._error = exc

    def __call__(self, *args: Any) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._q.put(args, timeout=_POLL)
                return
            except queue.Full:
                continue

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:  # drop what is queued; wait only for the call running now
            self._error = self._error or exc
            self._abort.set()
            self._thread.join(_GIVE_UP)
            return
        while self._thread.is_alive():  # the end marker, polling like every put
            try:
                self._q.put(None, timeout=_POLL)
                break
            except queue.Full:
                continue
        self._thread.join()
        if self._error is not None:
            raise self._error


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """PyTorch's intra-op CPU threads capped at ``n`` inside the block; the calling thread's
    setting is restored on leaving, also on an error, and never raised. (With OpenMP the count
    is mostly per thread, but ``torch.set_num_threads`` also sets the default of threads that
    first use torch meanwhile and resizes torch's shared pool; only the caller's count is
    restored.)

    Why: pass 2's tensors are small (one frame's maps), but each op wakes torch's OpenMP team,
    whose spinning threads then take a core from the decoder, the renderer and the encoder
    (measured on 2 cores, 300 frames of 640x360: pass 2 takes about 12 % less wall and CPU time
    with 1 thread; the decode-and-blend stage alone 0.29 s instead of 0.45 s).
    """
    saved = torch.get_num_threads()
    if n < saved:
        torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        if torch.get_num_threads() != saved:
            torch.set_num_threads(saved)
