"""A stand-in for the part of CuPy that kernelgrad uses, running its kernels in the
emulator: install() makes `import cupy` return this module.

Device arrays are NumPy arrays (the ndarray subclass below, whose type says it is from
cupy) in guarded memory: each allocation ends flush against a page that faults on any
access, one more page guards its start, and the few bytes that 16-byte alignment leaves
between the array's end and that page hold a canary checked after every launch. A fresh
array is filled with 0xff bytes (NaN in floats), as uninitialized device memory would
hold garbage. A kernel launch packs its arguments as CuPy does (arrays as pointers, NumPy
scalars at their own width) and the emulator checks them against the kernel's parameters.
"""
import ctypes
import mmap
import sys
import time
import types
import weakref

import numpy as np

from . import EmulatorError, Module, pack
from .. import _module
from ..kernels import KERNELS

SM_COUNT = 2  # few SMs: the launchers' grids stay small and every grid-stride loop wraps
DEFAULT_SHARED = 48 * 1024
MAX_SHARED = 227 * 1024  # an H100's opt-in limit per block
PAGE = mmap.PAGESIZE
CANARY = 0xA5
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_allocations = {}  # start address -> _Allocation, while its memory lives


class _Allocation:
    """The record of one guarded allocation; the memory itself belongs to the NumPy array
    `array()` (the registry holds only a weak reference, so arrays free as usual)."""

    def __init__(self, nbytes):
        self.nbytes = nbytes
        self.padded = -(-max(nbytes, 1) // 16) * 16
        pages = -(-self.padded // PAGE)
        memory = mmap.mmap(-1, (pages + 2) * PAGE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(memory))
        for page in (base, base + (pages + 1) * PAGE):
            if _libc.mprotect(page, PAGE, 0):
                raise OSError(ctypes.get_errno(), "mprotect failed for a guard page")
        self.end = base + (pages + 1) * PAGE
        self.start = self.end - self.padded
        array = np.frombuffer(memory, np.uint8, count=self.padded, offset=self.start - base)
        array[:nbytes] = 0xFF
        array[nbytes:] = CANARY
        self.array = weakref.ref(array)
        _allocations[self.start] = self
        weakref.finalize(array, _allocations.pop, self.start, None)
        self.first = array  # handed to the caller by take()

    def take(self):
        array, self.first = self.first, None
        return array

    def slack_intact(self):
        array = self.array()
        return array is None or bool(np.all(array[self.nbytes:] == CANARY))

    def where(self, address):
        """Where `address` lies relative to this allocation, or None when far from it."""
        if self.start - PAGE <= address < self.start:
            return f"{self.start - address} bytes before the start of a {self.nbytes}-byte array"
        if self.start + self.nbytes <= address < self.end + PAGE:
            return f"{address - self.start - self.nbytes} bytes past the end of a " \
                   f"{self.nbytes}-byte array"
        if self.start <= address < self.end:
            return f"byte {address - self.start} of a {self.nbytes}-byte array"
        return None


def _allocation_of(address):
    for allocation in list(_allocations.values()):
        if allocation.start <= address < allocation.start + allocation.padded:
            return allocation
    return None


class ndarray(np.ndarray):
    """A "device" array: NumPy's, with CuPy's .data.ptr and .get()."""
    __module__ = "cupy"

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.ctypes.data)

    @property
    def device(self):
        return cuda.Device(0)

    def get(self):
        return np.array(self.view(np.ndarray))


def empty(shape, dtype=np.float32, order="C"):
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    block = _Allocation(nbytes).take()
    return block[:nbytes].view(dtype).reshape(shape).view(ndarray)


def full(shape, fill_value, dtype=np.float32):
    out = empty(shape, dtype)
    out.fill(fill_value)
    return out


def zeros(shape, dtype=np.float32):
    return full(shape, 0, dtype)


def ones(shape, dtype=np.float32):
    return full(shape, 1, dtype)


def empty_like(a, dtype=None):
    return empty(np.shape(a), dtype or a.dtype)


def zeros_like(a, dtype=None):
    return zeros(np.shape(a), dtype or a.dtype)


def full_like(a, fill_value, dtype=None):
    return full(np.shape(a), fill_value, dtype or a.dtype)


def asarray(a, dtype=None):
    if isinstance(a, ndarray) and (dtype is None or np.dtype(dtype) == a.dtype):
        return a
    host = np.asarray(a.view(np.ndarray) if isinstance(a, ndarray) else a, dtype=dtype)
    out = empty(host.shape, host.dtype)
    out[...] = host
    return out


array = asarray


def ascontiguousarray(a, dtype=None):
    if isinstance(a, ndarray) and a.flags.c_contiguous and (dtype is None or
                                                            np.dtype(dtype) == a.dtype):
        return a
    return asarray(np.ascontiguousarray(np.asarray(a), dtype=dtype))


def asnumpy(a):
    return a.get() if isinstance(a, ndarray) else np.asarray(a)


def matmul(a, b):
    return asarray(np.matmul(np.asarray(a), np.asarray(b)))


def _on_device(fn):
    """A NumPy function whose array results come back as device arrays."""
    def wrapped(*args, **kwargs):
        out = fn(*args, **kwargs)
        if isinstance(out, np.ndarray) and not isinstance(out, ndarray):
            return out.view(ndarray)
        return out
    return wrapped


def __getattr__(name):  # the rest of CuPy's NumPy-like surface, from NumPy
    value = getattr(np, name)
    return _on_device(value) if callable(value) and not isinstance(value, type) else value


# ---- cupy.cuda -------------------------------------------------------------------------

class _Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)
        if self.id != 0:
            raise EmulatorError(f"the emulator has one device, 0; asked for {self.id}")
        self.attributes = {"MultiProcessorCount": SM_COUNT}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def synchronize(self):
        pass


class _Event:
    def __init__(self, *args, **kwargs):
        self.time = None

    def record(self, stream=None):
        self.time = time.perf_counter()

    def synchronize(self):
        pass


def _elapsed(start, stop):
    return (stop.time - start.time) * 1e3


class _Function:
    def __init__(self, module, name):
        self.module, self.name = module, name
        self.max_dynamic_shared_size_bytes = 0

    def __setattr__(self, key, value):
        if key == "max_dynamic_shared_size_bytes" and value > MAX_SHARED:
            raise EmulatorError(f"{value} bytes of dynamic shared memory asked for; "
                                f"the limit is {MAX_SHARED}")
        super().__setattr__(key, value)

    def __call__(self, grid, block, args, shared_mem=0):
        limit = max(DEFAULT_SHARED, self.max_dynamic_shared_size_bytes)
        if shared_mem > limit:
            raise EmulatorError(f"{self.name}: {shared_mem} bytes of dynamic shared memory, "
                                f"over the {limit} this kernel was allowed")
        packed = []
        for i, arg in enumerate(args):
            if isinstance(arg, np.ndarray) and not isinstance(arg, ndarray):
                raise EmulatorError(f"{self.name}: argument {i} is a NumPy (host) array")
            if isinstance(arg, (int, float, bool)):
                raise EmulatorError(f"{self.name}: argument {i} is a Python {type(arg).__name__}"
                                    "; pass a NumPy scalar of the parameter's width")
            packed.append(pack(arg, lambda a: a.data.ptr if isinstance(a, ndarray) else None))
        touched = {a for a in map(_allocation_of, (a.data.ptr for a in args
                                                   if isinstance(a, ndarray))) if a}

        def describe(address):
            for allocation in touched | set(_allocations.values()):
                place = allocation.where(address)
                if place:
                    return place
            return f"address {address:#x}, in no array"
        self.module.launch(self.name, grid, block, packed, shared_mem, describe)
        for allocation in touched:
            if not allocation.slack_intact():
                raise EmulatorError(f"{self.name} wrote past the end of a "
                                    f"{allocation.nbytes}-byte array")


class RawModule:
    def __init__(self, code, options=()):
        names = [n for n in _module.SOURCES if _module.source(n) == code]
        if not names:
            raise EmulatorError("the emulator runs kernelgrad's own CUDA sources only")
        self.module = Module(code, KERNELS[names[0]])

    def get_function(self, name):
        return _Function(self.module, name)


cuda = types.SimpleNamespace(
    Device=_Device, Event=_Event, get_elapsed_time=_elapsed,
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
    Stream=types.SimpleNamespace(null=None))


def install():
    """Make `import cupy` give this module (before anything imports the real one)."""
    real = sys.modules.get("cupy")
    if real is not None and real is not sys.modules[__name__]:
        raise RuntimeError("the real CuPy is already imported; install the emulator first")
    sys.modules["cupy"] = sys.modules[__name__]
