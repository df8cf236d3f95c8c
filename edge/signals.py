"""Stopping `edge run` from outside. SIGTERM (what systemd sends to stop or restart a service), SIGHUP (the
terminal closing) and SIGINT (Ctrl-C) all end a run the same way: the frame in hand is finished, then the
last window is reported, the reporter flushes and the summary is written, as when the source ends.

The handlers only note the signal; the run loop looks at the note after each frame and each tick. Raising
from the handler instead could cut a frame's bookkeeping in half (a tally with more scores than timings).
"""

import signal
import threading
from contextlib import contextmanager

SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")  # SIGHUP: not on Windows


class Stop:
    """Which signal asked the run to stop (its name), or None."""

    def __init__(self):
        self.signal: str | None = None

    def __bool__(self) -> bool:
        return self.signal is not None


@contextmanager
def stop_signals():
    """Within the block, SIGINT, SIGTERM and SIGHUP set the yielded Stop instead of ending the process; the
    previous handlers come back after it. Only the main thread may set handlers: elsewhere the Stop stays
    unset. A signal ignored when the block starts (nohup's SIGHUP) stays ignored."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def note(number, frame):
        stop.signal = stop.signal or signal.Signals(number).name

    previous = {}
    for name in SIGNALS:
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            previous[number] = signal.signal(number, note)
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
