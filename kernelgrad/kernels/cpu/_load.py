"""How much of the machine other processes are using, from the kernel's CPU accounting.

/proc/stat counts the time every CPU spent busy (steal included: a hypervisor running
another guest on our core), /proc/self/stat the time this process's threads ran; the
difference over an interval is the other processes' load, in cores. Linux only; elsewhere
the load reads as 0 (no adaptation).
"""
import os
import time

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_ticks():
    """(ticks every CPU was busy, ticks this process ran), or None off Linux."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()[1:]
        with open("/proc/self/stat", "rb") as f:
            own = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait are busy
    values = [int(v) for v in fields[:8]]
    busy = sum(values) - values[3] - values[4]
    # after the ")": state is field 3, so utime and stime are fields 14 and 15 (1-based)
    return busy, int(own[11]) + int(own[12])


class LoadMeter:
    """Other processes' load in cores, averaged since the previous reading that was at
    least `interval` seconds ago (reading more often returns the last average)."""

    def __init__(self, interval=0.1):
        self.interval = interval
        self._last = (time.monotonic(), _busy_ticks())
        self.cores = 0.0

    def read(self):
        now = time.monotonic()
        then, before = self._last
        if now - then < self.interval:
            return self.cores
        ticks = _busy_ticks()
        self._last = (now, ticks)
        if ticks is None or before is None:
            return self.cores
        other = (ticks[0] - before[0]) - (ticks[1] - before[1])
        self.cores = max(0.0, other / _TICKS / (now - then))
        return self.cores


def other_load(seconds=0.5):
    """Cores that other processes kept busy over the next `seconds` (this process idle)."""
    meter = LoadMeter(interval=0.0)
    time.sleep(seconds)
    return meter.read()
