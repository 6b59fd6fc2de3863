"""Output arrays for the CPU kernels, with large buffers reused once nothing refers to them.

A fresh multi-megabyte NumPy array is mmap'd by malloc and unmapped when freed, so every
op that returns one pays the kernel's page faults and zeroing on first touch: a 64 MiB
output costs about as much again as the op itself (tanh on 16M float32 elements: about
3.7 ms into a reused array, 5.7-6.5 ms into a fresh one). A training step frees its
activations and allocates the same sizes on the next step, so this module keeps the large
buffers it handed out and hands one out again once CPython's reference count shows that
no array or view of it is alive (the idea of PyTorch's CUDA caching allocator). Only
exact sizes are reused, and at most POOL_MAX_BYTES of idle buffers are kept.

Each buffer is handed out from its first page boundary. malloc's large blocks start 16
bytes past one, so every 64-byte vector store into them straddled two cache lines (and
every other 32-byte one): MSE at 16M float32 elements took 12.8-13.8 ms that way and
9.2-9.6 from a boundary, and GEMMs whose C is past 1 MiB took 3-11% longer
(4096x1024x1024 on two threads 27.7-29.9 against 24.4-29.2 ms, alternated runs).

A page, not a line: NumPy's own large arrays (the caller's inputs) start 16 bytes past a
page, and an output starting 64 bytes past one put each input load 48 bytes behind a
store modulo 4 KiB, which the core takes for a dependence (binary cross-entropy
10.0-11.4 -> 11.8-12.0 ms); from the page start the store it matches was 4 KiB earlier
and long gone (9.9-11.3 ms against 10.0-10.9 in the same rounds).
"""
import math
import sys

import numpy as np

from .checks import F32, F64

POOL_MIN_BYTES = 1 << 20    # smaller arrays come from malloc's heap, without page faults
POOL_MAX_BYTES = 1 << 30    # idle buffers kept for reuse, at most
PAGE = 4096
_pool = []                  # (uint8 buffer PAGE bytes over, offset of its first page
                            # boundary) for each buffer handed out, oldest first


def _references(i):
    return sys.getrefcount(_pool[i][0])


# The count _references reports for a buffer only the pool holds (its pair's slot and the
# call's argument on CPython; measured so that another interpreter's counting still works).
_pool.append((np.empty(1, np.uint8), 0))
_IDLE_REFERENCES = _references(0)
_pool.clear()


def _idle(i):
    return _references(i) <= _IDLE_REFERENCES


def empty(shape, dtype):
    """np.empty(shape, dtype), from a reused buffer when an idle one of this size exists."""
    if dtype is not F32 and dtype is not F64 and not isinstance(dtype, np.dtype):
        dtype = np.dtype(dtype)  # (isinstance on a dtype costs 70 ns: tested last)
    if type(shape) is int:  # first: np.ndim below costs a microsecond
        shape = (shape,)
    elif type(shape) is not tuple:
        shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < POOL_MIN_BYTES:  # the common small case, first and cheap
        return np.empty(shape, dtype)
    idle = [i for i in range(len(_pool)) if _idle(i)]
    match = next((i for i in idle if _pool[i][0].nbytes == nbytes + PAGE), None)
    if match is not None:
        buf, start = _pool.pop(match)
    else:
        buf = np.empty(nbytes + PAGE, np.uint8)
        start = -buf.ctypes.data % PAGE
        # drop the oldest idle buffers until the idle ones fit under the cap
        excess = sum(_pool[i][0].nbytes for i in idle) - POOL_MAX_BYTES
        dropped = set()
        for i in idle:
            if excess <= 0:
                break
            excess -= _pool[i][0].nbytes
            dropped.add(i)
        if dropped:
            _pool[:] = [held for i, held in enumerate(_pool) if i not in dropped]
    _pool.append((buf, start))
    # a view's base is the array owning the memory: every array handed out counts as a
    # reference to buf itself
    return buf[start: start + nbytes].view(dtype).reshape(shape)


# np.empty itself, for an output its caller knows is under POOL_MIN_BYTES: no Python frame
# between (a frame is a twentieth of relu's whole call on 64x128). The tests swap it, with
# empty and empty_like, for a NaN-filling allocator.
empty_small = np.empty


def empty_like(array):
    """empty(array.shape, array.dtype) for a C-contiguous NumPy array (the ops' outputs)."""
    if array.nbytes < POOL_MIN_BYTES:
        return np.empty(array.shape, array.dtype)  # (np.empty_like: 30 ns more)
    return empty(array.shape, array.dtype)


def is_pooled(array):
    """True when `array` is (a view of) a buffer this module handed out."""
    base = getattr(array, "base", None)
    return base is not None and any(base is buf for buf, _ in _pool)


def pooled_bytes():
    """(bytes held by live arrays, bytes idle and kept for reuse)."""
    idle = sum(_pool[i][0].nbytes for i in range(len(_pool)) if _idle(i))
    return sum(buf.nbytes for buf, _ in _pool) - idle, idle


def release():
    """Forget every idle buffer (its memory goes back to the system)."""
    _pool[:] = [_pool[i] for i in range(len(_pool)) if not _idle(i)]
