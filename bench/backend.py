"""The device a benchmark runs on: its array module, its timer, and PyTorch where PyTorch
can run there. A case builds its inputs through it, so one case serves both devices."""
import statistics
import time
from dataclasses import dataclass

import numpy as np

# After a call, OpenBLAS's worker threads spin for about 0.1 s and Numba's OpenMP threads
# for a few ms before they sleep; on 2 cores a spinning pool halves the speed of the other
# library's threads. Each CPU measurement starts after this pause, so it times one library
# alone, whichever ran before it.
SETTLE_S = 0.25
NOISY_SPREAD = 0.2  # a row whose repeats spread by more than this is marked noisy


@dataclass
class Timing:
    """Seconds per call: the median of the repeats, and their spread, the interquartile
    range over the median."""
    median: float
    spread: float
    repeats: int

    @property
    def noisy(self):
        return self.spread > NOISY_SPREAD


def timing_of(times):
    times = sorted(times)
    median = statistics.median(times)
    q1, _, q3 = statistics.quantiles(times, n=4) if len(times) >= 2 else (median,) * 3
    return Timing(median, (q3 - q1) / median if median > 0 else 0.0, len(times))


def cpu_time(fn, min_repeats=7, budget_s=0.5, settle_s=SETTLE_S, max_repeats=400):
    """fn's wall time: a settling pause, a warm-up call, then repeats within a budget."""
    time.sleep(settle_s)
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - start < budget_s
                                       and len(times) < max_repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return timing_of(times)


def cuda_time(fn, repeats=20):
    """fn's time by CUDA events on the current stream, after a warm-up call."""
    import cupy
    fn()
    times = []
    for _ in range(repeats):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return timing_of(times)


def _torch_on(device):
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None
    return torch


class Backend:
    """name "cpu" (NumPy arrays) or "cuda" (CuPy arrays)."""

    def __init__(self, name):
        self.name = name
        if name == "cuda":
            import cupy
            self.xp = cupy
        else:
            self.xp = np
        self.torch = _torch_on(name)
        self.time = cuda_time if name == "cuda" else cpu_time
        # what a user of this device writes instead of our kernel
        self.array_library = "CuPy" if name == "cuda" else "NumPy"

    def array(self, a):
        return self.xp.asarray(a)

    def host(self, a):
        return a.get() if self.name == "cuda" else np.asarray(a)

    def tensor(self, a):
        """A PyTorch tensor sharing a's memory (a NumPy or CuPy array)."""
        if self.name == "cpu":
            return self.torch.from_numpy(np.ascontiguousarray(a))
        return self.torch.as_tensor(a, device="cuda")
