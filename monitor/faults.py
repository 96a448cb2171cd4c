"""Fault injection for the crash tests: ``crashpoint(name)`` kills the process right there.

A testing hook, not a feature: when the environment variable ``NEWS_MONITOR_CRASHPOINT``
names a point, the process sends itself SIGKILL when it reaches that point — no cleanup, no
flush, exactly like ``kill -9`` or a power cut at the worst moment. Unset (always, in
production) it costs one dictionary lookup.

Points:
    after-match    rules matched an article; nothing recorded yet
    after-record   the hit and seen-mark are recorded; nothing sent yet
    after-send     a sink answered 2xx; the delivery is not acknowledged yet
"""

from __future__ import annotations

import os
import signal

ENV = "NEWS_MONITOR_CRASHPOINT"
POINTS = frozenset({"after-match", "after-record", "after-send"})


def crashpoint(name: str) -> None:
    """SIGKILL this process when ``$NEWS_MONITOR_CRASHPOINT`` equals ``name``."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
