"""CPU priority of the service's work threads: the event loop comes first.

On a small CPU (2 cores here) a model call, a decode or a PNG encode can keep every core busy.
The event loop then waits for a time slice, and the cheap answers it gives (``/health``, the 503
``overloaded`` refusals of a burst, reading request heads) are delayed by work that could wait.
So every thread and process that does such work runs at a lower priority (a higher "nice"
value, ``CXR_WORK_NICENESS``): under load the kernel runs the event loop first, and with spare
CPU the work runs at full speed as before. Native thread pools (TensorFlow's, OpenVINO's) inherit
the priority of the thread that creates them, so the model is loaded and warmed up on a lowered
thread too; ``lower_other_threads`` then catches any pool a library created elsewhere.

Linux only (``setpriority`` on a thread id sets that thread's nice value); elsewhere a no-op.
Raising a nice value needs no privilege.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

logger = logging.getLogger("service")

_LINUX = sys.platform.startswith("linux")


def _lower(tid: int, niceness: int) -> None:
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        if current < niceness:
            os.setpriority(os.PRIO_PROCESS, tid, niceness)
    except OSError:  # the thread ended meanwhile, or a sandbox forbids it: not worth failing
        pass


def lower_thread_priority(niceness: int) -> None:
    """Give the calling thread (and every native thread it starts later) nice ``niceness``."""
    if _LINUX and niceness > 0:
        _lower(threading.get_native_id(), niceness)


def lower_other_threads(niceness: int, keep: int) -> int:
    """Every thread of this process except ``keep`` (the event loop's native id) to
    ``niceness``; returns how many threads were looked at."""
    if not _LINUX or niceness <= 0:
        return 0
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return 0
    for tid in tids:
        if tid != keep:
            _lower(tid, niceness)
    return len(tids)
