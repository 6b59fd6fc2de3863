"""Launchers for matmul.cu, cuBLAS as the baseline, and impl="auto" on the GPU.

impl names: "cuda-tiled" (shared-memory tiles), "cuda-regblock" (register-blocked, 128-bit
loads, double-buffered), "cuda-tf32" (tensor cores through mma.sync, inputs rounded to
TF32, float32 accumulation, a cp.async pipeline of 3 stages, or 2 where the device's
shared memory per block is smaller; matmul_tc.cu),
"cublas" (cupy.matmul in float32, then the bias and activation in one in-place pass of
our bias_activation kernel) and "auto": the fastest float32 one for the shape class, timed
with CUDA events the first time a class is seen in this process (as
torch.backends.cudnn.benchmark does; that one measurement synchronizes, nothing after it
does).
"""
import functools

import cupy

from .._spec import CUDA_IMPLS as IMPLS  # noqa: F401  (the names gemm() takes)
from .._spec import cuda_gemm_refusal
from . import _module as m
from . import activations

# auto keeps float32 semantics: the tensor-core rungs round the inputs, so it never picks
# them; ask for them by name.
AUTO_IMPLS = ("cuda-tiled", "cuda-regblock", "cublas")
TILE, BM, BN = 32, 128, 128  # TILE and BN as _spec.CUDA_GEMM_TILE_N gives them
# matmul_tc.cu's dynamic shared memory per pipeline stage: 2 operands x TC_TILE floats, a
# tile being 128 rows of 32 + 4 or 32 rows of 128 + 8 floats, whichever is larger
TC_STAGE_BYTES = 2 * max(128 * (32 + 4), 32 * (128 + 8)) * 4
TC_STAGES = (3, 2)  # the builds in matmul_tc.cu, deepest first
_choices = {}  # (device id, shape class) -> impl


def _ours(kernel, a, b, trans_a, trans_b, M, N, K, bias, act, alpha):
    c = m.empty((M, N))
    bias_arg = m.NULL if bias is None else bias
    common = (a, b, c, bias_arg, m.i32(M), m.i32(N), m.i32(K), m.i32(trans_a), m.i32(trans_b),
              m.i32(act), m.f32(alpha))
    if kernel == "cuda-tiled":
        m.launch("matmul", "matmul_tiled", _grid(M, N, TILE), (TILE, TILE), common)
        return c
    lda, ldb = (M if trans_a else K), (K if trans_b else N)
    vec = (m.i32(lda % 4 == 0 and m.aligned(a)), m.i32(ldb % 4 == 0 and m.aligned(b)),
           m.i32(N % 4 == 0 and m.aligned(c)))
    grid = _grid(M, N, BM)
    if kernel == "cuda-regblock":
        m.launch("matmul", "matmul_regblock", grid, 256, common + vec)
        return c
    stages = tc_stages(cupy.cuda.Device().id)
    name = f"matmul_tf32_{'t' if trans_a else 'n'}{'t' if trans_b else 'n'}_s{stages}"
    _tensor_core_kernel(name, cupy.cuda.Device().id, stages)(
        grid, (256,), common[:7] + common[9:] + vec, shared_mem=stages * TC_STAGE_BYTES)
    return c


@functools.lru_cache(maxsize=None)
def tc_stages(device_id):
    """The deepest pipeline of matmul_tc.cu whose shared memory fits this device's opt-in
    limit per block (3 stages, 110,592 B, on sm_80 and sm_90; 2 on sm_86, sm_89 and sm_120,
    whose limit is 101,376 B)."""
    limit = cupy.cuda.Device(device_id).attributes["MaxSharedMemoryPerBlockOptin"]
    for stages in TC_STAGES:
        if stages * TC_STAGE_BYTES <= limit:
            return stages
    raise ValueError(f"impl='cuda-tf32' needs {TC_STAGES[-1] * TC_STAGE_BYTES} bytes of shared "
                     f"memory per block; this GPU allows {limit}; use 'cublas' or 'auto'")


def _grid(M, N, tile):
    return (-(-M // tile), -(-N // tile))


@functools.lru_cache(maxsize=None)
def _tensor_core_kernel(name, device_id, stages):
    """The kernel, opted in to its shared memory (above the 48 KiB default) once, not on
    every launch."""
    fn = m.kernel("matmul_tc", name)
    fn.max_dynamic_shared_size_bytes = stages * TC_STAGE_BYTES
    return fn


def _cublas(a, b, trans_a, trans_b, bias, act, alpha):
    c = cupy.matmul(a.T if trans_a else a, b.T if trans_b else b)
    return activations.bias_activation(c, bias, act, alpha)


def _time(fn, repeats=3):
    fn()  # compiles (first use) and warms up
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(repeats):
        fn()
    stop.record()
    stop.synchronize()
    return cupy.cuda.get_elapsed_time(start, stop) / repeats


def gemm(a, b, trans_a, trans_b, impl, key, bias=None, act=0, alpha=0.0):
    """act(op(a) @ op(b) + bias) on the GPU; operands validated (float32, 2-D, contiguous)."""
    M = a.shape[1] if trans_a else a.shape[0]
    K = a.shape[0] if trans_a else a.shape[1]
    N = b.shape[0] if trans_b else b.shape[1]

    def run(name):
        if name == "cublas":
            return _cublas(a, b, trans_a, trans_b, bias, act, alpha)
        return _ours(name, a, b, trans_a, trans_b, M, N, K, bias, act, alpha)

    if impl != "auto":
        why = cuda_gemm_refusal(impl, M, N, K)
        if why:
            raise ValueError(f"impl={impl!r} cannot run this GEMM: {why}; use 'cublas' or "
                             "'auto'")
        return run(impl)
    choice_key = (cupy.cuda.Device().id, key)
    if choice_key not in _choices:
        fitting = [name for name in AUTO_IMPLS if not cuda_gemm_refusal(name, M, N, K)]
        _choices[choice_key] = min(fitting, key=lambda name: _time(lambda: run(name)))
    choice = _choices[choice_key]
    # a shape class spans sizes: a rung picked for a narrower product of it may not fit
    return run("cublas" if cuda_gemm_refusal(choice, M, N, K) else choice)


def choices():
    """{(device id, shape class): impl} chosen by auto in this process."""
    return dict(_choices)
