"""How many threads a parallel kernel runs on: Numba's thread count, capped by the cores
other processes leave idle.

A parallel region ends when its slowest thread does. On a machine where another process
holds a core, the thread the scheduler puts there gets a time slice only now and then,
and every parallel kernel waits for it: measured on 2 cores with one busy, a training
epoch took 15x longer with 2 threads than with 1. So before a parallel kernel this module
looks at the machine's load (kernels/cpu/_load.py, read at most every READ_INTERVAL
seconds, so the check costs well under a microsecond) and uses only the idle cores:
a kernel runs serially when fewer than about 1.5 cores are free. Results do not depend on
the thread count (no kernel's arithmetic does), only the time does.

KERNELGRAD_ADAPT_THREADS=0 turns this off (every parallel kernel then takes Numba's count).
"""
import os
import time

import numba

from ._load import LoadMeter

READ_INTERVAL = 0.1     # seconds between readings of the load
IDLE_MARGIN = 0.5       # a core counts as free when at most this much of it is taken

ADAPT = os.environ.get("KERNELGRAD_ADAPT_THREADS", "1") != "0"
_CORES = os.cpu_count() or 1
_meter = LoadMeter(READ_INTERVAL)
_state = {"checked": -1.0, "threads": None, "configured": None}


def available():
    """Threads a parallel kernel should run on now (1: run the serial build)."""
    now = time.monotonic()
    if now - _state["checked"] < READ_INTERVAL:
        return _state["threads"]
    configured = numba.get_num_threads()
    threads = configured
    if ADAPT and configured > 1:
        free = _CORES - _meter.read()
        threads = max(1, min(configured, int(free + IDLE_MARGIN)))
    _state.update(checked=now, threads=threads, configured=configured)
    return threads


def configured():
    """Numba's thread count as last read by available()."""
    return _state["configured"]


def run(parallel, serial, work, min_work, args):
    """parallel(*args) on the threads available now, or serial(*args) when that is one
    thread or the work is below min_work elements."""
    threads = available() if work >= min_work else 1
    if threads == 1:
        return serial(*args)
    total = _state["configured"]
    if threads == total:
        return parallel(*args)
    numba.set_num_threads(threads)  # for this kernel only: the user's setting stays
    try:
        return parallel(*args)
    finally:
        numba.set_num_threads(total)
