"""Arrays placed against a page that faults on any access: a kernel that reads or writes
one element past the end (or, placed at the start, before the beginning) of an array
crashes the process instead of corrupting memory quietly.

Each array gets its own anonymous mapping: guard page, data pages, guard page; the data sit
flush against the guard after them ("end") or before them ("start").
"""
import ctypes
import math
import mmap

import numpy as np

PAGE = mmap.PAGESIZE
PROT_NONE = 0
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def _protect(address, size):
    if _libc.mprotect(address, size, PROT_NONE) != 0:
        raise OSError(ctypes.get_errno(), "mprotect failed")


def empty(shape, dtype, place="end"):
    """An uninitialized array of `shape` between two guard pages."""
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    pages = max(1, -(-nbytes // PAGE))
    mapping = mmap.mmap(-1, (pages + 2) * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
    _protect(base, PAGE)
    _protect(base + (pages + 1) * PAGE, PAGE)
    offset = PAGE if place == "start" else (pages + 1) * PAGE - nbytes
    array = np.frombuffer(mapping, dtype=dtype, count=count, offset=offset).reshape(shape)
    array.fill(np.nan if dtype.kind == "f" else 0) if count else None
    return array


def copy(a, place="end"):
    """A guarded copy of array `a` (same shape, dtype and values, C-contiguous)."""
    out = empty(a.shape, a.dtype, place)
    out[...] = a
    return out
