"""Compiling and launching kernelgrad's CUDA kernels through CuPy.

Each op family's CUDA C lives in a .cu file beside its launcher (activations.cu and
activations.py, ...); KERNELS lists the extern "C" kernels each must define. `source(name)`
is the file as compiled: the constants of kernels/_spec.py as #define lines, then the file
with each `#include "x.cuh"` replaced by that header, so the text CuPy compiles, and keys
its compile cache on, is the whole program. `module(name)` compiles it once per process
with NVRTC for the current device's architecture (the cubin is cached on disk) and loads
it through cupy.RawModule. Kernels launch on CuPy's current stream and nothing here synchronizes
with the host, so a training step made of these ops can be captured into a CUDA graph.

Nothing in this file imports CuPy at import time: the package imports, and the CUDA
sources compile-check (tools/cuda_compile_check.py), on machines with no GPU and no CuPy.
"""
import functools
import hashlib
import os
import pathlib
import re
import tempfile

import numpy as np

from .._spec import ACTIVATIONS, cuda_defines

SOURCE_DIR = pathlib.Path(__file__).resolve().parent
KERNELS = {
    "activations": tuple(f"{a}_{d}" for a in ACTIVATIONS for d in ("forward", "backward"))
    + ("bias_activation",),
    "dropout": ("dropout",),
    "softmax_cross_entropy": tuple(f"softmax_cross_entropy_{path}" for path in
                                   ("warp", "cached_vec", "cached_scalar", "block")),
    "losses": ("binary_cross_entropy_with_logits", "mse"),
    "bias_grad": ("bias_grad_bands", "sum_bands"),
    "optim": ("sgd_step", "adagrad_step", "rmsprop_step", "adam_step"),
    "matmul": ("matmul_tiled", "matmul_regblock"),
    "matmul_tc": tuple(f"matmul_tf32_{ab}_s{stages}" for stages in (3, 2)
                       for ab in ("nn", "nt", "tn", "tt")),
}
SOURCES = tuple(KERNELS)
OPTIONS = ("--std=c++17",)
NULL = np.uint64(0)  # a null pointer argument (e.g. no bias)
BLOCK = 256


def empty(shape):
    """Every CUDA output is allocated here (the GPU tests swap in a NaN-filled allocator)."""
    import cupy
    return cupy.empty(shape, dtype=np.float32)


# kernel scalar argument types (CuPy packs a NumPy scalar with its exact C width)
f32, i32, i64 = np.float32, np.int32, np.int64


def source(name):
    """The CUDA C of op family `name` as compiled: _spec's #defines, then the file with each
    `#include "x.cuh"` replaced by that file between `// begin x.cuh` and `// end x.cuh`
    lines (the emulator swaps ptx.cuh's part)."""
    text = (SOURCE_DIR / f"{name}.cu").read_text()
    if '#include "common.cuh"' not in text:
        raise RuntimeError(f"{name}.cu does not include common.cuh")

    def paste(match):
        header = match.group(1)
        return f"// begin {header}\n{(SOURCE_DIR / header).read_text()}// end {header}"
    return ("// from kernels/_spec.py\n" + cuda_defines()
            + re.sub(r'^#include "(\w+\.cuh)"$', paste, text, flags=re.M))


@functools.lru_cache(maxsize=None)
def module(name):
    import cupy
    if getattr(cupy, "EMULATED", False):  # the CPU emulator of CUDA builds the source itself
        return cupy.RawModule(code=source(name), options=OPTIONS)
    return cupy.RawModule(path=str(_cubin(name)))


def _cubin(name):
    """The cubin of op family `name` for the current device, compiled by NVRTC with OPTIONS
    alone and cached on disk beside CuPy's own cache.

    Not cupy.RawModule(code=...): CuPy appends -ftz=true to every NVRTC compile, which
    flushes subnormal inputs and results to zero, so a ReLU gradient at a saved 1e-40
    would be 0 on the GPU and the upstream gradient on the CPU and in PyTorch."""
    import cupy
    from cupy_backends.cuda.libs import nvrtc
    code = source(name)
    options = (*OPTIONS, f"--gpu-architecture=sm_{cupy.cuda.Device().compute_capability}")
    key = hashlib.sha256(repr((code, options, nvrtc.getVersion())).encode()).hexdigest()
    cache = pathlib.Path(os.environ.get("CUPY_CACHE_DIR", "~/.cupy/kernel_cache"))
    path = cache.expanduser() / "kernelgrad" / f"{name}-{key[:32]}.cubin"
    if path.exists():
        return path
    prog = nvrtc.createProgram(code, f"{name}.cu", [], [])
    try:
        try:
            nvrtc.compileProgram(prog, list(options))
        except nvrtc.NVRTCError:
            raise RuntimeError(f"{name}.cu does not compile with {' '.join(options)}:\n"
                               f"{nvrtc.getProgramLog(prog)}") from None
        cubin = nvrtc.getCUBIN(prog)
    finally:
        nvrtc.destroyProgram(prog)
    path.parent.mkdir(parents=True, exist_ok=True)
    # written whole under a temporary name, then renamed: another process never reads half
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as f:
        f.write(cubin)
    os.replace(f.name, path)
    return path


def kernel(module_name, kernel_name):
    return module(module_name).get_function(kernel_name)


@functools.lru_cache(maxsize=None)
def _sm_count(device_id):
    import cupy
    return cupy.cuda.Device(device_id).attributes["MultiProcessorCount"]


def sm_count():
    """Streaming multiprocessors of the current device."""
    import cupy
    return _sm_count(cupy.cuda.Device().id)


def grid(items, block=BLOCK, waves=16):
    """Blocks for a grid-stride loop over `items`: enough to cover them, at most `waves`
    blocks per SM (more only adds scheduling work)."""
    return max(1, min((items + block - 1) // block, sm_count() * waves))


def aligned(*arrays):
    """1 when every array's data is 16-byte aligned (128-bit loads are allowed), else 0."""
    return int(all(a.data.ptr % 16 == 0 for a in arrays))


def launch(module_name, kernel_name, blocks, threads, args, shared_mem=0):
    kernel(module_name, kernel_name)(
        blocks if isinstance(blocks, tuple) else (blocks,),
        threads if isinstance(threads, tuple) else (threads,), args, shared_mem=shared_mem)


# ---- the device error flag --------------------------------------------------------------
# Kernels that can meet bad data only on the device (a label outside [0, classes): the
# host cannot check it without a synchronizing read) write NaN results and set this flag.
# check_errors() reads it: the nn API calls it wherever it reads a value back to the host
# (loss.item()), which synchronizes anyway.

@functools.lru_cache(maxsize=None)
def _error_flag(device_id):
    import cupy
    with cupy.cuda.Device(device_id):
        return cupy.zeros(1, dtype=np.int32)


def error_flag():
    import cupy
    return _error_flag(cupy.cuda.Device().id)


def check_errors():
    """Raise if a kernel on the current device flagged bad input since the last check."""
    flag = error_flag()
    if int(flag.get()[0]):
        flag.fill(0)
        raise ValueError("softmax_cross_entropy on the GPU got a label outside [0, classes): "
                         "that row's loss and dlogits are NaN")
