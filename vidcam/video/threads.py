"""Background threads that let decoding and encoding overlap the model and the renderer.

:class:`Prefetch` runs an iterator (the decoder) ahead of its consumer; :class:`WriteBehind`
runs calls (the encoder's ``write``) behind their caller. Both keep order, hold at most
``depth`` items, and re-raise an error of the thread in the caller.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any


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
            item, exc = self._q.get()
            if exc is not None:
                raise exc
            if item is self._END:
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class WriteBehind:
    """Calls ``fn(*args)`` in a background thread, in order, up to ``depth`` calls behind (the
    encoder works while the next frame renders). An error in ``fn`` re-raises in the caller."""

    def __init__(self, fn: Callable[..., Any], depth: int = 8) -> None:
        self._fn = fn
        self._q: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vidcam-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            args = self._q.get()
            if args is None:
                return
            if self._error is None:
                try:
                    self._fn(*args)
                except BaseException as exc:  # re-raised in the caller
                    self._error = exc

    def __call__(self, *args: Any) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(args)

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._error = self._error or exc  # drop what is queued
        self._q.put(None)
        self._thread.join()
        if exc_type is None and self._error is not None:
            raise self._error
