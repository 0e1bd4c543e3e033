"""The command line's SIGTERM/SIGHUP handling keeps a signal the caller ignores ignored:
``nohup vidcam batch ...`` must survive the terminal closing (SIGHUP)."""

from __future__ import annotations

import signal

import pytest

from vidcam.cli import Stopped, _stop_on_signals


@pytest.fixture
def restore_hup():
    old = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, old)


def test_an_ignored_sighup_stays_ignored(restore_hup):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what nohup does
    with _stop_on_signals():
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        signal.raise_signal(signal.SIGHUP)  # nothing happens: the run goes on
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


def test_a_default_sighup_stops_the_command(restore_hup):
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    with pytest.raises(Stopped), _stop_on_signals():
        signal.raise_signal(signal.SIGHUP)
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL  # restored after the command
