"""Compilation helpers shared by the Numba kernels.

`typed` makes scalar device functions whose float constants take the argument's dtype
(a float32 kernel stays float32: Numba would otherwise promote at every literal), their
multiply-adds contracted into FMAs where the compile target has them.
`kernel` compiles one Python function twice, parallel and serial, each cached on disk
under its own name, so small inputs skip the thread pool's start-up cost.
"""
import inspect
import os
import types as pytypes

import numpy as np
from numba import njit, typeof
from numba.core import types
from numba.extending import overload

from . import _threads

# Below this many elements of work a parallel launch costs more than it saves.
PARALLEL_MIN_WORK = int(os.environ.get("KERNELGRAD_PARALLEL_MIN_WORK", 1 << 15))


def typed(factory):
    """factory(T) -> scalar function using constants of NumPy type T; dispatch on arg 0."""
    stub = factory(np.float64)
    impls = {types.float32: factory(np.float32), types.float64: stub}
    params = ", ".join(inspect.signature(stub).parameters)
    first = params.split(",")[0]
    namespace = {}
    exec(f"def typing({params}):\n    return impls.get({first})", {"impls": impls}, namespace)
    # contract: a * b + c may become one fused multiply-add where the target has them (the
    # polynomials of exp and tanh are chains of these); NaN and inf keep their meaning
    overload(stub, jit_options={"fastmath": {"contract"}})(namespace["typing"])
    return stub


class Kernel:
    """A parallel and a serial build of one function; call with the amount of work."""

    def __init__(self, fn, fastmath):
        # error_model="numpy": x / 0 is inf or NaN as in NumPy. Python's model checks every
        # division for zero and raises, a branch that keeps LLVM from vectorizing the loop.
        options = dict(cache=True, fastmath=fastmath, error_model="numpy")
        self.parallel = njit(parallel=True, **options)(fn)
        serial_fn = pytypes.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial",
                                         fn.__defaults__, fn.__closure__)
        # Numba names its cache files after the qualname: distinct names keep the two apart.
        serial_fn.__qualname__ = fn.__qualname__ + "_serial"
        self.serial = njit(**options)(serial_fn)
        self.__doc__ = fn.__doc__

    @staticmethod
    def threads(work):
        """How many threads a launch with this much work runs on (1: the serial build):
        Numba's count, capped by the cores other processes leave idle (_threads.py)."""
        return _threads.available() if work >= PARALLEL_MIN_WORK else 1

    def serial_entry(self, *args):
        """The serial build for exactly these arguments' types; see entry()."""
        return entry(self.serial, *args)

    def __call__(self, work, *args):
        if work < PARALLEL_MIN_WORK:  # small: straight to the serial build
            return self.serial(*args)
        return _threads.run(self.parallel, self.serial, work, PARALLEL_MIN_WORK, args)


def entry(dispatcher, *args):
    """The dispatcher's machine code for exactly the Numba types of `args` (compiled, or
    loaded from the disk cache, now), as a function that calls it without the dispatcher.

    A dispatcher call types every argument and looks the signature up: 0.2-0.4 us, as much
    as relu's whole kernel on 8K elements; the entry point unboxes the arguments and runs
    (about 0.1 us). It does not check their types, so only a plan that has checked them
    calls it: each array the same dtype, ndim, C layout and alignment as the sample's. An
    input may be read-only where the sample is not (the same data model; the kernels never
    write their inputs).
    """
    return dispatcher.compile(tuple(typeof(a) for a in args))


def kernel(fn=None, *, fastmath=False):
    if fn is None:
        return lambda f: Kernel(f, fastmath)
    return Kernel(fn, fastmath)


class Specialized:
    """Kernels generated from `factory(*options)`, one per option tuple, built on first use.

    The options (activation id, flags) become closure constants, so each variant gets
    its own branch-free, vectorized loop. Numba keys its disk cache on the closure's
    values, so the variants do not collide. (numba.literally would do the same but
    costs milliseconds of dispatch on every call.)
    """

    def __init__(self, factory):
        self.factory = factory
        self.variants = {}
        self.__doc__ = factory.__doc__

    def __getitem__(self, options):
        options = options if isinstance(options, tuple) else (options,)
        found = self.variants.get(options)
        if found is None:
            found = self.variants[options] = Kernel(self.factory(*options), False)
        return found

