"""The decode/encode threads survive lost wake-ups and never hang an error path.

A signal handler that raises (SIGTERM -> ``Stopped``) can interrupt ``Queue.put`` between waking
a waiter and unlisting it; CPython's ``Condition`` then spends the next notification on the
stale waiter. Here the notifications are dropped outright: both classes must still finish.
"""

from __future__ import annotations

import threading

import pytest

from tests.conftest import run_bounded
from vidcam.video.threads import Prefetch, WriteBehind

#: seconds after which a wait counts as a hang (generous: only a hang ever reaches it)
HANG_S = 900.0


def _drop_notifications(q) -> None:
    for cond in (q.not_empty, q.not_full):
        cond.notify = lambda n=1: None


def test_write_behind_finishes_without_any_notification():
    done: list[int] = []
    wb = WriteBehind(done.append, depth=2)
    _drop_notifications(wb._q)

    def write_all() -> None:
        with wb as write:
            for i in range(6):
                write(i)

    finished, error = run_bounded(write_all, HANG_S)  # without polling: blocked forever
    assert finished, f"WriteBehind waited {HANG_S} s for a notification that never came"
    assert error is None
    assert done == list(range(6))  # in order, every call made


def test_prefetch_finishes_without_any_notification():
    p = Prefetch(iter(range(20)), depth=2)
    _drop_notifications(p._q)
    finished, items = run_bounded(lambda: list(p), HANG_S)
    assert finished, f"Prefetch waited {HANG_S} s for a notification that never came"
    assert items == list(range(20))
    p.close()


def test_write_behind_error_path_waits_only_for_the_running_call():
    """Call 0 runs until the error path has begun; calls 1-4 are queued behind it then and
    must be dropped, not run (no clock: the running call is released by the abort itself)."""
    started, gate = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow(i: int) -> None:
        calls.append(i)
        started.set()
        assert gate.wait(HANG_S), "the error path never began"

    wb = WriteBehind(slow, depth=4)
    releaser = threading.Thread(target=lambda: wb._abort.wait(HANG_S) and gate.set(), daemon=True)
    releaser.start()
    with pytest.raises(KeyboardInterrupt), wb as write:
        for i in range(5):
            write(i)
        assert started.wait(HANG_S), "call 0 never started"
        raise KeyboardInterrupt
    releaser.join(HANG_S)
    wb._thread.join(HANG_S)
    assert not wb._thread.is_alive()
    assert calls == [0]  # the running call finished; the four queued ones were dropped


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
            leave.wait(HANG_S)
            seen.append(torch.get_num_threads())
        seen.append(torch.get_num_threads())

    try:
        t = threading.Thread(target=other)
        with torch_threads(1):
            t.start()
            assert inside.wait(HANG_S)
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2  # left first, while the other is still inside
        leave.set()
        t.join(HANG_S)
        assert seen == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
