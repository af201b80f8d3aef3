"""Child processes the sandbox starts for one run: tied to it, so they never outlive it."""

from __future__ import annotations

import contextlib
import ctypes
import signal
from collections.abc import Callable, Iterator
from types import FrameType

PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None
try:  # resolved here, in the parent: the forked child only makes the call
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def die_with_parent() -> None:
    """`preexec_fn` for Popen: the kernel sends the child SIGTERM when its parent dies, even
    by SIGKILL, so nothing the run started is left behind. Linux only; elsewhere a no-op."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


class Stopped(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived: unwind, stopping what was started."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into `Stopped` in the main thread, whatever the shell
    set (a background job starts with SIGINT ignored). Once stopping, later signals are
    ignored so that the cleanup itself is not cut short."""
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.getsignal(s) for s in handled}
    stopping = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise Stopped(signum)

    for s in handled:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s in handled:
            signal.signal(s, previous[s])
