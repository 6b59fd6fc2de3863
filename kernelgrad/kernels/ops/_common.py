"""What every op front-end needs: the device of its arrays, its outputs, the CUDA launcher
of its family."""
import importlib

import numpy as np

from ... import devices
from .. import _alloc, checks
from .._spec import ACTIVATION_IDS, ACTIVATIONS

F32, F64 = checks.F32, checks.F64


def plain(x):
    """True for an array the CPU fast paths take as it is: exactly a C-contiguous float32
    or float64 numpy.ndarray with data."""
    return (type(x) is np.ndarray and (x.dtype is F32 or x.dtype is F64)
            and x.flags.c_contiguous and x.size > 0)


def empty(shape, dtype):
    """Every CPU output is allocated here: large ones from reused buffers (_alloc.py).
    (The tests swap in a NaN-filled allocator.)"""
    return _alloc.empty(shape, dtype)


def empty_like(x):
    """An output shaped like the C-contiguous NumPy array x (from reused buffers if large)."""
    return _alloc.empty_like(x)


class Plans(dict):
    """Checked call plans by argument signature: a call whose signature was seen before
    skips the checks that signature passed (its arrays' type, dtype and layout are still
    tested, cheaply, before the lookup). At most LIMIT signatures are kept."""

    LIMIT = 512

    def remember(self, key, plan):
        if len(self) >= self.LIMIT:
            self.clear()
        try:
            self[key] = plan
        except TypeError:  # an unhashable argument: nothing to remember it by
            pass
        return plan

    def find(self, key):
        try:
            return self.get(key)
        except TypeError:
            return None


def on_gpu(*arrays):
    """True for CuPy arrays, False for NumPy; mixing devices in one op is an error."""
    if all(type(a) is np.ndarray or a is None for a in arrays):
        return False  # the common case, every op of a CPU training step: no set to build
    arrays = [a for a in arrays if a is not None]
    devices.same_device(*arrays)
    return checks.is_cupy(arrays[0])


def cuda(family):
    """The CUDA launcher module of an op family, imported on first use (it imports CuPy)."""
    return importlib.import_module(f"kernelgrad.kernels.cuda.{family}")


def activation_id(name):
    try:
        return ACTIVATION_IDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS} or None") \
            from None


def alpha_of(alpha, dtype):
    """leaky_relu's negative slope, checked, in the op's dtype."""
    return dtype.type(checks.finite(alpha, "alpha (leaky_relu's negative slope)", 0.0,
                                    dtype=dtype))
