"""`impl="auto"`: pick the faster implementation of a GEMM per shape class, by measuring.

An op with several implementations ("numba": ours, "blas": OpenBLAS through NumPy) asks
`run(key, "auto", candidates)`. The first call in a shape class times every candidate on
the real arguments and keeps the winner; its result is returned, so nothing is computed
in vain.

A choice must hold for the work as it runs, not for one GEMM alone. A GEMM in a training
step sits between Numba kernels, and a library's cost includes what it does to them:
OpenBLAS's threads spin for about 0.1 s after a call and halve the speed of Numba's on a
small machine, and Numba's spin a little after theirs (measured: a wide MLP step took 69
ms with two small GEMMs sent to OpenBLAS, 24 ms with none, though each GEMM timed faster
there alone). So each candidate is timed as it runs in a step: a parallel Numba kernel
before it and one after it, with no pause between repeats; after OpenBLAS's round a pause
lets its threads sleep, so that the next candidate is not charged for them.

A choice must not record a moment's load as the machine's speed. The candidates are
timed in ROUNDS interleaved rounds, each the best of a few runs; the choice is the
candidate with the lower median over the rounds. It is written to disk only when the
rounds settle it (the winner's slowest round beats the others' fastest, or every
candidate's rounds agree within NOISE) and other processes held
less than a quarter of a core meanwhile; otherwise it holds for this process for
RETRY_SECONDS and is measured again after that.

Winners are kept in memory and in a JSON file under the user's cache directory, one file
per machine, compile target and software build. Overrides, strongest first: the `impl=`
argument; the environment variable KERNELGRAD_IMPL ("numba", "blas" or "auto"); the cache.
KERNELGRAD_CACHE_DIR moves the cache file (default: $XDG_CACHE_HOME/kernelgrad or
~/.cache/kernelgrad).
"""
import functools
import hashlib
import json
import math
import os
import platform
import statistics
import tempfile
import time

import llvmlite.binding as llvm_binding
import numba
import numpy as np

from ._spec import CPU_IMPLS, CUDA_IMPLS

IMPLS = CPU_IMPLS
# CUDA_IMPLS are for CuPy arrays (cuda/matmul.py); auto there is measured per process
ENV_IMPL = "KERNELGRAD_IMPL"
ENV_CACHE_DIR = "KERNELGRAD_CACHE_DIR"
ROUNDS = 3               # interleaved rounds of timing per candidate
ROUND_SECONDS = 0.02     # each round's budget per candidate, after the first run
NOISE = 0.25             # rounds further apart than this (relative) are not recorded
BUSY_CORES = 0.25        # other processes' load above which nothing is recorded
RETRY_SECONDS = 30.0     # how long an unrecorded choice holds before it is measured again
SETTLE_SECONDS = 0.1     # a pause before measuring, so earlier work's spinning threads sleep
SPINNING = {"blas"}      # candidates whose threads spin on after they return

_choices = None          # key -> {"impl": name, "seconds": {name: median}, ...}
_choices_path = None     # the file _choices was loaded from
_provisional = {}        # key -> (impl, time it was chosen, medians): not recorded (noisy)


# os.environ.get costs about 0.7 us when the variable is unset (a KeyError raised and
# caught inside); a plan lookup reads it on every small GEMM, so it reads os.environ's own
# table, which os.environ[...] = and monkeypatch.setenv keep current (CPython's layout
# since 3.2; anything else falls back to the public call).
_ENVIRON = getattr(os.environ, "_data", None)
try:
    _ENV_IMPL_KEY = os.environ.encodekey(ENV_IMPL)
except AttributeError:
    _ENVIRON = None


def env_impl():
    """$KERNELGRAD_IMPL as set now, or None."""
    if _ENVIRON is None:
        return os.environ.get(ENV_IMPL)
    raw = _ENVIRON.get(_ENV_IMPL_KEY)
    return None if raw is None else os.environ.decodevalue(raw)


def check_impl(impl, device="cpu"):
    """The implementation asked for on `device`: impl, else $KERNELGRAD_IMPL, else "auto".
    The environment variable names one device's implementation; on the other it means
    auto."""
    valid = IMPLS if device == "cpu" else CUDA_IMPLS
    if impl is None or impl == "auto":
        impl = env_impl() or "auto"
        source = f"environment variable {ENV_IMPL}"
        if impl in IMPLS + CUDA_IMPLS and impl not in valid:
            return "auto"
    else:
        source = "impl"
    if impl != "auto" and impl not in valid:
        raise ValueError(f"{source} is {impl!r}; on {device} choose one of {('auto',) + valid}")
    return impl


def shape_class(op, dtype, *sizes, flags=()):
    """A key for shapes that behave alike: each size rounded to the nearest power of two."""
    rounded = "x".join(str(2 ** round(math.log2(s))) for s in sizes)
    tags = "".join(f",{f}" for f in flags)
    return f"{op}:{np.dtype(dtype).name}:{rounded}{tags}:t{numba.get_num_threads()}"


@functools.lru_cache(maxsize=None)
def _machine_file_name():
    """One file per machine, compile target and build: a choice made on other hardware,
    for another target or with another NumPy/Numba/BLAS says nothing about this one."""
    from .. import __version__
    from .cpu._target import target_features, target_name
    identity = "|".join([platform.machine(), llvm_binding.get_host_cpu_name(), target_name(),
                         target_features(), str(os.cpu_count()), np.__version__,
                         numba.__version__, __version__])
    return f"impl-choices-{hashlib.sha256(identity.encode()).hexdigest()[:12]}.json"


def cache_dir():
    """kernelgrad's cache folder: $KERNELGRAD_CACHE_DIR, else ~/.cache/kernelgrad (XDG)."""
    base = os.environ.get(ENV_CACHE_DIR)
    if base:
        return base
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "kernelgrad")


def cache_path():
    return os.path.join(cache_dir(), _machine_file_name())


def _load():
    global _choices, _choices_path
    path = cache_path()
    if _choices is not None and _choices_path == path:
        return _choices
    try:
        with open(path) as f:
            loaded = json.load(f)
    except (OSError, ValueError):
        loaded = {}  # no file yet, or an unreadable one: measure again
    # a file of another shape (a list, null) or with entries of another shape holds nothing
    # usable: those entries are measured again and the file rewritten
    _choices = {k: v for k, v in loaded.items() if isinstance(v, dict)
                and v.get("impl") in IMPLS} if isinstance(loaded, dict) else {}
    _choices_path = path
    return _choices


def _save(choices):
    path = cache_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(choices, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: the choice still holds for this process


def choices():
    """Every choice: {shape class: {"impl": name, "seconds": {impl: median}, ...}}, the
    recorded ones and those held for this process only ("provisional": True), which were
    measured on a busy machine or whose rounds disagreed and will be measured again."""
    held = {key: {"impl": impl, "seconds": medians, "provisional": True}
            for key, (impl, _, medians) in _provisional.items()}
    return {**held, **_load()}


def forget():
    """Drop every choice, in memory and on disk (the next auto call measures)."""
    global _choices
    _choices = {}
    _provisional.clear()
    try:
        os.remove(cache_path())
    except OSError:
        pass


def known(key):
    """The choice for `key` (recorded, or provisional and still fresh), or None."""
    entry = _load().get(key)
    if entry is not None:
        return entry["impl"]
    provisional = _provisional.get(key)
    if provisional is not None and time.monotonic() - provisional[1] < RETRY_SECONDS:
        return provisional[0]
    return None


_neighbour_data = None


def _neighbour():
    """A parallel Numba kernel of about 20 us: what runs before and after a GEMM in a
    training step (so a library that leaves spinning threads behind pays for them)."""
    global _neighbour_data
    from .cpu.activations import activation_forward
    if _neighbour_data is None:
        _neighbour_data = (np.ones(1 << 16, np.float32), np.empty(1 << 16, np.float32))
    x, out = _neighbour_data
    activation_forward[1](1 << 16, x, out, np.float32(0))


def _round(fn):
    """The best time of fn in context (a neighbour kernel before and after) over about
    ROUND_SECONDS, at least two runs."""
    best, spent, runs = math.inf, 0.0, 0
    while runs < 2 or (spent < ROUND_SECONDS and runs < 50):
        _neighbour()
        start = time.perf_counter()
        fn()
        _neighbour()
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best


def measure(candidates):
    """({name: its rounds' best times}, other processes' load in cores meanwhile, the first
    result of each candidate); each candidate's first run compiles and warms caches."""
    from .cpu._load import LoadMeter
    time.sleep(SETTLE_SECONDS)
    meter = LoadMeter(interval=0.0)
    results = {name: fn() for name, fn in candidates.items()}
    rounds = {name: [] for name in candidates}
    for _ in range(ROUNDS):
        for name, fn in candidates.items():
            rounds[name].append(_round(fn))
            if name in SPINNING:  # its threads would tax the next candidate's round
                time.sleep(SETTLE_SECONDS)
    return rounds, meter.read(), results


def settled(rounds, winner):
    """Whether the rounds settle the choice: the winner's slowest round beats every other
    candidate's fastest (however noisy the machine), or every candidate's rounds agree
    within NOISE."""
    others = [min(times) for name, times in rounds.items() if name != winner]
    if max(rounds[winner]) < min(others, default=math.inf):
        return True
    return all((max(t) - min(t)) / min(t) <= NOISE for t in rounds.values())


def run(key, impl, candidates):
    """Run candidates[impl], choosing by measurement (and remembering) when impl is auto.

    `impl` must come from check_impl; candidates maps each name in IMPLS to a
    zero-argument function computing the op.
    """
    if impl != "auto":
        return candidates[impl]()
    choice = known(key)
    if choice is not None:
        return candidates[choice]()
    rounds, load, results = measure(candidates)
    medians = {name: statistics.median(times) for name, times in rounds.items()}
    winner = min(IMPLS, key=medians.get)
    if settled(rounds, winner) and load <= BUSY_CORES:
        choices = _load()
        choices[key] = {"impl": winner, "seconds": medians, "rounds": rounds,
                        "other_load_cores": round(load, 3)}
        _provisional.pop(key, None)
        _save(choices)
    else:  # a moment's load or noise: hold this choice a while, then measure again
        _provisional[key] = (winner, time.monotonic(), medians)
    return results[winner]
