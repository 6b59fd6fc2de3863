"""`impl="auto"`: pick the faster implementation of an op per shape class, by measuring.

An op with several implementations ("numba": ours, "blas": OpenBLAS through NumPy) asks
`run(op_key, impl, candidates)`. With impl "auto" (the default) the first call in a shape
class times every candidate on the real arguments (each run once to compile and warm
up, then best of a few), keeps the winner and returns the winner's result, so nothing is
computed in vain.

Each candidate is timed together with a small parallel Numba kernel run right after it,
because that is what follows a GEMM in a training step, and because a BLAS call costs
more than its own time: OpenBLAS's threads spin for about 0.1 s after a call and on a
2-core machine halve the speed of every Numba kernel that runs meanwhile (measured: a
wide MLP step took 69 ms with two small GEMMs through OpenBLAS, 24 ms with none).
Winners are kept in memory and in a JSON file under the user's cache directory, one file
per machine and software build, so the measurement happens once.

Overrides, strongest first: the `impl=` argument; the environment variable
KERNELGRAD_IMPL ("numba", "blas" or "auto"); the cache. KERNELGRAD_CACHE_DIR moves the
cache file (default: $XDG_CACHE_HOME/kernelgrad or ~/.cache/kernelgrad).
"""
import functools
import hashlib
import json
import math
import os
import platform
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
MEASURE_SECONDS = 0.05   # per candidate, after its warm-up run; at least 2 timed runs
# OpenBLAS's threads spin for about 0.1 s after a call, Numba's OpenMP threads for a few
# ms; on a small machine a spinning pool halves the other library's speed. Each candidate
# is timed after this pause, alone (once per shape class and machine: the result is cached).
SETTLE_SECONDS = 0.2

_choices = None          # key -> {"impl": name, "seconds": {name: best time}}
_choices_path = None     # the file _choices was loaded from


def check_impl(impl, device="cpu"):
    """The implementation asked for on `device`: impl, else $KERNELGRAD_IMPL, else "auto".
    The environment variable names one device's implementation; on the other it means
    auto."""
    valid = IMPLS if device == "cpu" else CUDA_IMPLS
    if impl is None or impl == "auto":
        impl = os.environ.get(ENV_IMPL, "auto") or "auto"
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
    """One file per machine and build: a choice made on other hardware or with another
    NumPy/Numba/BLAS says nothing about this one. (Hashed once: every auto call looks.)"""
    from .. import __version__
    identity = "|".join([platform.machine(), llvm_binding.get_host_cpu_name(),
                         str(os.cpu_count()), np.__version__, numba.__version__, __version__])
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
    """Every recorded choice: {shape class: {"impl": name, "seconds": {impl: time}}}."""
    return dict(_load())


def forget():
    """Drop every recorded choice, in memory and on disk (the next auto call measures)."""
    global _choices
    _choices = {}
    try:
        os.remove(cache_path())
    except OSError:
        pass


_probe_data = None


def _next_kernel():
    """A parallel Numba kernel of about 20 us: what runs after a GEMM in a training step."""
    global _probe_data
    from .cpu.activations import activation_forward
    if _probe_data is None:
        _probe_data = (np.ones(1 << 16, np.float32), np.empty(1 << 16, np.float32))
    x, out = _probe_data
    activation_forward[1](1 << 16, x, out, np.float32(0))


def _best_time(fn):
    time.sleep(SETTLE_SECONDS)
    result = fn()  # compiles (first use) and warms caches
    _next_kernel()
    best, spent, runs = math.inf, 0.0, 0
    while runs < 2 or spent < MEASURE_SECONDS:
        start = time.perf_counter()
        result = fn()
        _next_kernel()
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
        if runs >= 50:
            break
    return best, result


def run(key, impl, candidates):
    """Run candidates[impl], choosing by measurement (and remembering) when impl is auto.

    `impl` must come from check_impl; candidates maps each name in IMPLS to a
    zero-argument function computing the op.
    """
    if impl != "auto":
        return candidates[impl]()
    known = _load().get(key)
    if known is not None:
        return candidates[known["impl"]]()
    seconds, results = {}, {}
    for name in IMPLS:
        seconds[name], results[name] = _best_time(candidates[name])
    winner = min(IMPLS, key=seconds.get)
    choices = _load()
    choices[key] = {"impl": winner, "seconds": seconds}
    _save(choices)
    return results[winner]
