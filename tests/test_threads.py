"""The decode/encode threads survive lost wake-ups and never hang an error path.

A signal handler that raises (SIGTERM -> ``Stopped``) can interrupt ``Queue.put`` between waking
a waiter and unlisting it; CPython's ``Condition`` then spends the next notification on the
stale waiter. Here the notifications are dropped outright: both classes must still finish.
"""

from __future__ import annotations

import threading
import time

import pytest

from vidcam.video.threads import Prefetch, WriteBehind


def _drop_notifications(q) -> None:
    for cond in (q.not_empty, q.not_full):
        cond.notify = lambda n=1: None


def test_write_behind_finishes_without_any_notification():
    done: list[int] = []
    wb = WriteBehind(done.append, depth=2)
    _drop_notifications(wb._q)
    started = time.monotonic()
    with wb as write:
        for i in range(6):
            write(i)
    assert done == list(range(6))  # in order, every call made
    assert time.monotonic() - started < 5


def test_prefetch_finishes_without_any_notification():
    p = Prefetch(iter(range(20)), depth=2)
    _drop_notifications(p._q)
    assert list(p) == list(range(20))
    p.close()


def test_write_behind_error_path_waits_only_for_the_running_call():
    gate = threading.Event()
    calls: list[int] = []

    def slow(i: int) -> None:
        calls.append(i)
        gate.wait(0.5)

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), WriteBehind(slow, depth=4) as write:
        for i in range(5):
            write(i)
        raise KeyboardInterrupt
    assert time.monotonic() - started < 3  # not 5 x 0.5 s: the queued calls are dropped
    assert len(calls) <= 3


def test_write_behind_reraises_the_threads_error():
    def fail(i: int) -> None:
        raise OSError(f"disk full at {i}")

    with pytest.raises(OSError, match="disk full at 0"), WriteBehind(fail) as write:
        write(0)


def test_torch_threads_caps_inside_and_restores_after_errors_and_nesting():
    import torch

    from vidcam.video.threads import torch_threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch_threads(1):
            assert torch.get_num_threads() == 1
            with torch_threads(1):  # nested: the inner block restores the outer's cap
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="boom"), torch_threads(1):
            raise RuntimeError("boom")
        assert torch.get_num_threads() == 2
        with torch_threads(4):  # never raises the count
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_torch_threads_in_two_threads_each_get_their_own_setting_back():
    """Blocks overlapping in time in two threads: each thread finds its own count again, in
    whatever order they leave."""
    import torch

    from vidcam.video.threads import torch_threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    inside, leave = threading.Event(), threading.Event()
    seen: list[int] = []

    def other() -> None:
        torch.set_num_threads(2)
        with torch_threads(1):
            inside.set()
            leave.wait(5)
            seen.append(torch.get_num_threads())
        seen.append(torch.get_num_threads())

    try:
        t = threading.Thread(target=other)
        with torch_threads(1):
            t.start()
            assert inside.wait(5)
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2  # left first, while the other is still inside
        leave.set()
        t.join(5)
        assert seen == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
