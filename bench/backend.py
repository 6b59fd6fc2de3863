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


# Blocks per library when several are compared (Backend.time_all): each library is timed
# in ROUNDS blocks taken in turn, so that a burst of other work on a shared machine (a
# neighbour's job on the same host, seen here to slow one block tenfold) or a drift of the
# clock lands in one block of one library, not in all of its time.
ROUNDS = 3


@dataclass
class Timing:
    """Seconds per call: the median of the repeats (with blocks, the median of the
    blocks' medians), and their spread, the interquartile range of all repeats over the
    median."""
    median: float
    spread: float
    repeats: int
    blocks: tuple = ()  # each block's median, in the order the blocks ran

    @property
    def noisy(self):
        return self.spread > NOISY_SPREAD


def timing_of(times, blocks=None):
    """Timing of `times`, or of the blocks (lists of repeats) they were taken in."""
    if blocks is not None:
        times = [t for block in blocks for t in block]
    times = sorted(times)
    block_medians = () if blocks is None else tuple(statistics.median(b) for b in blocks)
    median = statistics.median(times) if blocks is None else statistics.median(block_medians)
    q1, _, q3 = statistics.quantiles(times, n=4) if len(times) >= 2 else (median,) * 3
    return Timing(median, (q3 - q1) / median if median > 0 else 0.0, len(times),
                  block_medians)


def paired_ratio(a, b):
    """The median over rounds of a's block median / b's in the same round, for two
    Timings from one time_in_blocks: blocks a round apart run seconds apart, on a shared
    host whose speed drifts by 10-15% in minutes, so the ratio of two whole medians moves
    with the drift and this one much less."""
    return statistics.median(x / y for x, y in zip(a.blocks, b.blocks))


def cpu_samples(fn, min_repeats=7, budget_s=0.5, settle_s=SETTLE_S, max_repeats=400):
    """fn's wall times: a settling pause, a warm-up call, then repeats within a budget.
    An fn with a samples(**budget) method is a library timed in another process
    (forced_blas.py), which times its own block with this budget; one with a before_each
    method (Prepared) has it run, untimed, before each call."""
    remote = getattr(fn, "samples", None)
    if remote is not None:
        return remote(min_repeats=min_repeats, budget_s=budget_s, settle_s=settle_s,
                      max_repeats=max_repeats)
    prepare = getattr(fn, "before_each", None)
    time.sleep(settle_s)
    if prepare is not None:
        prepare()
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - start < budget_s
                                       and len(times) < max_repeats):
        if prepare is not None:
            prepare()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


class Prepared:
    """fn, timed by cpu_samples with before_each() run, untimed, before every call."""

    def __init__(self, fn, before_each):
        self.fn, self.before_each = fn, before_each

    def __call__(self):
        return self.fn()


def cpu_time(fn, **budget):
    return timing_of(cpu_samples(fn, **budget))


def cuda_samples(fn, repeats=20):
    """fn's times by CUDA events on the current stream, after a warm-up call."""
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
    return times


def cuda_time(fn, repeats=20):
    return timing_of(cuda_samples(fn, repeats))


def time_in_blocks(samples, fns, rounds=ROUNDS, between_rounds=None):
    """{name: Timing} for a dict of functions, each timed in `rounds` blocks taken in
    turn (a, b, c, a, b, c, ...); samples(fn) times one block; between_rounds(), if
    given, runs untimed before every round but the first."""
    blocks = {name: [] for name in fns}
    for r in range(rounds):
        if r and between_rounds is not None:
            between_rounds()
        for name, fn in fns.items():
            blocks[name].append(samples(fn))
    return {name: timing_of(None, b) for name, b in blocks.items()}


def cpu_time_all(fns, rounds=ROUNDS, min_repeats=7, budget_s=0.5, max_repeats=400,
                 settle_s=SETTLE_S, between_rounds=None):
    """time_in_blocks on the CPU, the budget and repeats shared among a function's blocks;
    each block starts with the settling pause, so it times one library alone."""
    return time_in_blocks(lambda fn: cpu_samples(
        fn, min_repeats=-(-min_repeats // rounds), budget_s=budget_s / rounds,
        settle_s=settle_s, max_repeats=-(-max_repeats // rounds)), fns, rounds,
        between_rounds)


def cuda_time_all(fns, rounds=ROUNDS, repeats=20, between_rounds=None):
    return time_in_blocks(lambda fn: cuda_samples(fn, -(-repeats // rounds)), fns, rounds,
                          between_rounds)


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
        self.time_all = cuda_time_all if name == "cuda" else cpu_time_all
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
