"""A stand-in for the part of CuPy that kernelgrad uses, running its kernels in the
emulator: install() makes `import cupy` return this module.

Device arrays are NumPy arrays (the ndarray subclass below, whose type says it is from
cupy) in guarded memory: each allocation sits between two pages that fault on any
access, flush against one of them (PLACE_VARIABLE), and the rest of its pages hold a
canary checked after every launch. A fresh array is filled with 0xff bytes (NaN in
floats), as uninitialized device memory would hold garbage. A kernel launch packs its
arguments as CuPy does (arrays as pointers, NumPy scalars at their own width) and the
emulator checks them against the kernel's parameters.
"""
import ctypes
import mmap
import os
import sys
import time
import types
import weakref

import numpy as np

from kernelgrad.kernels.cuda import _module
from kernelgrad.kernels.cuda._module import KERNELS

from . import EmulatorError, Module

SM_COUNT = 2  # few SMs: the launchers' grids stay small and every grid-stride loop wraps
DEFAULT_SHARED = 48 * 1024
# The opt-in limit of dynamic shared memory per block: an H100's by default; set
# SHARED_VARIABLE to pose as another part (101376 for sm_86, sm_89 and sm_120).
SHARED_VARIABLE = "KERNELGRAD_CUDA_EMULATOR_SHARED"
MAX_SHARED = int(os.environ.get(SHARED_VARIABLE, 227 * 1024))
PAGE = mmap.PAGESIZE
# Around each array: a NaN in float32 (and a huge float64), so a kernel that reads it
# shows, and a pattern no kernel writes, so a write there is caught after the launch.
CANARY = bytes.fromhex("a5a5a57f")
# "end": arrays end flush against their guard page (overruns fault); "start": they begin
# at one (underruns fault). Either way the bytes between array and guards hold CANARY.
PLACE_VARIABLE = "KERNELGRAD_CUDA_EMULATOR_PLACE"
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_allocations = {}  # start address -> _Allocation, while its memory lives


class _Allocation:
    """The record of one guarded allocation (see _allocate); the memory itself belongs to
    the NumPy array `region`, which the registry holds only weakly, so arrays free as usual."""

    def __init__(self, region, low, start, nbytes):
        self.region, self.nbytes = weakref.ref(region), nbytes
        self.low, self.high = low, low + region.size  # the usable pages
        self.start, self.offset = start, start - low
        _allocations[start] = self
        weakref.finalize(region, _allocations.pop, start, None)

    def canaries_intact(self):
        region = self.region()
        if region is None:
            return True
        canary = np.frombuffer(CANARY, np.uint8)
        before = region[:self.offset]
        after = region[self.offset + self.nbytes:]
        return bool(np.all(before == canary[np.arange(before.size) % 4]) and
                    np.all(after == canary[(np.arange(after.size) + self.nbytes) % 4]))

    def where(self, address):
        """`address` relative to this array, or None when outside its pages and guards."""
        if not self.low - PAGE <= address < self.high + PAGE:
            return None
        offset = address - self.start
        side = " (before its start)" if offset < 0 else \
            " (past its end)" if offset >= self.nbytes else ""
        return f"byte {offset} of a {self.nbytes}-byte array{side}"


def _allocate(nbytes):
    """nbytes of guarded memory, as a uint8 array: a faulting page on each side, the array
    flush against one of them (PLACE_VARIABLE), CANARY in the rest of its pages."""
    padded = -(-max(nbytes, 1) // 16) * 16
    pages = -(-padded // PAGE)
    memory = mmap.mmap(-1, (pages + 2) * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(memory))
    for page in (base, base + (pages + 1) * PAGE):
        if _libc.mprotect(page, PAGE, 0):
            raise OSError(ctypes.get_errno(), "mprotect failed for a guard page")
    low = base + PAGE
    at_start = os.environ.get(PLACE_VARIABLE, "end") == "start"
    start = low if at_start else low + pages * PAGE - padded
    region = np.frombuffer(memory, np.uint8, count=pages * PAGE, offset=PAGE)
    region[...] = np.frombuffer(CANARY, np.uint8)[np.arange(region.size) % 4]
    array = region[start - low:start - low + nbytes]
    array[...] = 0xFF
    _Allocation(region, low, start, nbytes)
    return array


def _allocation_of(address):
    for allocation in list(_allocations.values()):
        if allocation.low <= address < allocation.high:
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
    return _allocate(nbytes).view(dtype).reshape(shape).view(ndarray)


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
        self.attributes = {"MultiProcessorCount": SM_COUNT,
                           "MaxSharedMemoryPerBlockOptin": MAX_SHARED}

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
        packed = [self._pack(i, arg) for i, arg in enumerate(args)]
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
            if not allocation.canaries_intact():
                raise EmulatorError(f"{self.name} wrote outside a {allocation.nbytes}-byte "
                                    "array (into the bytes between it and its guard pages)")


    def _pack(self, i, arg):
        """Argument i as CuPy passes it: a device array as its data pointer, a NumPy scalar
        at its exact C width; anything else is refused."""
        if isinstance(arg, ndarray):
            return ctypes.c_void_p(arg.data.ptr)
        if isinstance(arg, np.generic):
            return (ctypes.c_char * arg.itemsize).from_buffer_copy(arg.tobytes())
        if isinstance(arg, np.ndarray):
            raise EmulatorError(f"{self.name}: argument {i} is a NumPy (host) array")
        if isinstance(arg, (int, float, bool)):
            raise EmulatorError(f"{self.name}: argument {i} is a Python {type(arg).__name__}"
                                "; pass a NumPy scalar of the parameter's width")
        raise EmulatorError(f"{self.name}: argument {i} is a {type(arg).__name__} (device "
                            "arrays and NumPy scalars only)")


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
    runtime=types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDeviceProperties=lambda device: {"name": b"kernelgrad CUDA emulator (CPU)"}))
__version__ = "emulator"
EMULATED = True  # kernelgrad hands the emulator its CUDA source, not a cubin


def get_default_memory_pool():
    return types.SimpleNamespace(free_all_blocks=lambda: None)


random = types.SimpleNamespace(
    random=lambda size, dtype=np.float64: asarray(np.random.random(size).astype(dtype)))


cupyx = types.ModuleType("cupyx")
cupyx.scatter_add = lambda a, slices, value: np.add.at(a, slices, value)


def install():
    """Make `import cupy` (and cupyx) give this module (before anything imports the real
    ones)."""
    real = sys.modules.get("cupy")
    if real is not None and real is not sys.modules[__name__]:
        raise RuntimeError("the real CuPy is already imported; install the emulator first")
    sys.modules["cupy"] = sys.modules[__name__]
    sys.modules["cupyx"] = cupyx
