"""matmul, linear, linear_backward: GEMMs with an optional bias-and-activation epilogue,
on cpu/matmul.py (or OpenBLAS through NumPy) and cuda/matmul.cu, matmul_tc.cu (or cuBLAS).
"""
import numpy as np

from .. import _autotune, checks
from ..cpu import activations as cpu_activations
from ..cpu import matmul as cpu_kernels
from . import activations
from ._common import activation_id, alpha_of, cuda, empty, on_gpu
from .bias_grad import column_sums

# Below this many multiply-adds (about 0.1 ms) auto does not measure and runs ours: BLAS
# may win such a call by microseconds, but waking OpenBLAS's thread pool between Numba
# kernels costs far more (the demo MLP step: 0.39 ms all Numba, 1.85 ms with its three
# 10-wide GEMMs sent to OpenBLAS, although each measured faster there).
AUTO_MIN_MACS = 1 << 24

_scratch_buffers = {}
SCRATCH_KEEP_BYTES = 64 << 20  # a larger packing buffer is used once and let go


def _scratch(size, dtype):
    """A reused buffer for the GEMM's packed operands. A fresh multi-megabyte array per
    call would page-fault on first touch every time (it is mmap'd and unmapped by malloc);
    reuse is safe because the kernels hold the GIL, so calls never overlap. One that a
    rare, huge product needs (a (1, K) @ (K, 1) packs 16 K floats) is not kept."""
    buf = _scratch_buffers.get(dtype)
    if buf is not None and buf.size >= size:
        return buf
    buf = np.empty(size, dtype)
    if buf.nbytes <= SCRATCH_KEEP_BYTES:
        _scratch_buffers[dtype] = buf
    return buf


def _operands(a, b, trans_a, trans_b):
    a = checks.float_array(a, "a", 2, 2)
    b = checks.float_array(b, "b", 2, 2)
    checks.same_dtype(a, "a", b, "b")
    a_shape = a.shape[::-1] if trans_a else a.shape
    b_shape = b.shape[::-1] if trans_b else b.shape
    if a_shape[1] != b_shape[0]:
        raise ValueError(f"matmul shapes do not align: op(a) is {a_shape} and op(b) is "
                         f"{b_shape} (a {a.shape}, trans_a={trans_a}; b {b.shape}, "
                         f"trans_b={trans_b})")
    return a, b


def gemm(a, b, trans_a, trans_b, impl, bias=None, act=0, alpha=None):
    """act(op(a) @ op(b) + bias) by `impl` (already checked); operands checked."""
    M = a.shape[1] if trans_a else a.shape[0]
    K = a.shape[0] if trans_a else a.shape[1]
    N = b.shape[0] if trans_b else b.shape[1]
    alpha = a.dtype.type(0) if alpha is None else alpha
    has_epilogue = bias is not None or act != 0
    key = gemm_shape_class("linear" if has_epilogue else "matmul", a.dtype, M, N, K, trans_a,
                           trans_b)
    if checks.is_cupy(a):
        return cuda("matmul").gemm(a, b, bool(trans_a), bool(trans_b), impl, key, bias, act,
                                   alpha)

    if bias is None:
        bias = np.zeros(N if act else 1, a.dtype)  # the epilogue adds a bias: zero if none

    def numba():
        c = empty((M, N), a.dtype)
        work = M * N * K // 64
        parts = cpu_kernels.partition(M, N, a.dtype, cpu_kernels.gemm.threads(work))
        scratch = _scratch(cpu_kernels.scratch_size(M, N, K, a.dtype, parts[0] * parts[1]),
                           a.dtype)
        cpu_kernels.gemm(work, a, b, c, bias, has_epilogue, act, alpha, bool(trans_a),
                         bool(trans_b), *parts, scratch)
        return c

    def blas():
        c = empty((M, N), a.dtype)
        np.matmul(a.T if trans_a else a, b.T if trans_b else b, out=c)
        if has_epilogue:
            cpu_activations.bias_activation(c.size, c, bias, act, alpha)
        return c

    if impl == "auto" and M * N * K < AUTO_MIN_MACS:
        impl = "numba"
    return _autotune.run(key, impl, {"numba": numba, "blas": blas})


def gemm_shape_class(op, dtype, M, N, K, trans_a=False, trans_b=False):
    """The key under which impl="auto" records its choice for this GEMM ("matmul", or
    "linear" for one with an epilogue); see impl_choices()."""
    return _autotune.shape_class(op, dtype, M, N, K, flags=(f"t{int(trans_a)}{int(trans_b)}",))


impl_choices = _autotune.choices
forget_impl_choices = _autotune.forget


def matmul(a, b, trans_a=False, trans_b=False, impl="auto"):
    """C = op(a) @ op(b), op transposing when trans_* is set; 2-D, any M, N, K.

    impl on the CPU: "numba" (our packed GEMM), "blas" (OpenBLAS through NumPy) or "auto"
    (the faster one for this shape class, measured once and cached; $KERNELGRAD_IMPL
    overrides auto). On the GPU: "cuda-tiled", "cuda-regblock", "cuda-tf32", "cuda-bf16"
    (tensor cores; inputs rounded to TF32 / bf16), "cublas" or "auto" (the fastest float32
    one, measured once per shape class and process). Transposed operands are read in place.
    """
    impl = _autotune.check_impl(impl, "cuda" if on_gpu(a, b) else "cpu")
    a, b = _operands(a, b, trans_a, trans_b)
    return gemm(a, b, trans_a, trans_b, impl)


def linear(x, w, b=None, activation=None, alpha=0.01, return_preact=False, impl="auto"):
    """y = act(x @ w + b); with impl "numba" in one kernel (bias and activation applied to
    each finished tile of the GEMM), with "blas" as an OpenBLAS GEMM and one fused pass.

    x (batch, in), w (in, out), b (out,) or None. With return_preact, returns (y, z)
    where z = x @ w + b; gelu's backward needs z. impl as for matmul.
    """
    impl = _autotune.check_impl(impl, "cuda" if on_gpu(x, w, b) else "cpu")
    x = checks.float_array(x, "x", 2, 2)
    w = checks.float_array(w, "w", 2, 2)
    checks.same_dtype(x, "x", w, "w")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"linear: x has shape {x.shape} but w has shape {w.shape}; w must "
                         f"be (in_features={x.shape[1]}, out_features)")
    if b is not None:
        b = checks.float_array(b, "b", 1, 1)
        checks.same_dtype(x, "x", b, "b")
        if b.shape != (w.shape[1],):
            raise ValueError(f"linear: b has shape {b.shape} but w has shape {w.shape}; "
                             f"b must be ({w.shape[1]},)")
    act = activation_id(activation)
    alpha = alpha_of(alpha, x.dtype)
    if not return_preact:
        return gemm(x, w, False, False, impl, b, act, alpha)
    z = gemm(x, w, False, False, impl, b, 0, alpha)
    return activations.forward(z, act, alpha), z


def linear_backward(dy, x, w, y, activation=None, alpha=0.01, preact=None,
                    need_input_grad=True, impl="auto"):
    """(dx, dw, db) for y = act(x @ w + b); dx is None unless need_input_grad.

    `y` is the layer's output; gelu needs `preact` (z) instead. dx = dz @ w.T and
    dw = x.T @ dz are GEMMs on the transposed operands in place; impl as for matmul.
    """
    impl = _autotune.check_impl(impl, "cuda" if on_gpu(dy, x, w, y, preact) else "cpu")
    x = checks.float_array(x, "x", 2, 2)
    w = checks.float_array(w, "w", 2, 2)
    dy = checks.float_array(dy, "dy", 2, 2)
    checks.same_dtype(x, "x", w, "w")
    checks.same_dtype(x, "x", dy, "dy")
    expected = (x.shape[0], w.shape[1])
    if x.shape[1] != w.shape[0] or dy.shape != expected:
        raise ValueError(f"linear_backward: x {x.shape}, w {w.shape} and dy {dy.shape} do "
                         f"not fit (dy must be {expected})")
    act = activation_id(activation)
    alpha = alpha_of(alpha, x.dtype)
    dz = dy
    if act:
        saved_name = "preact" if activation == "gelu" else "y"
        saved = preact if activation == "gelu" else y
        if saved is None:
            raise ValueError(f"linear_backward with {activation} needs {saved_name}")
        saved = checks.float_array(saved, saved_name, 2, 2)
        checks.same_shape(saved, saved_name, dy, "dy")
        checks.same_dtype(saved, saved_name, dy, "dy")
        dz = activations.backward(dy, saved, act, alpha)
    dx = gemm(dz, w, False, True, impl) if need_input_grad else None
    dw = gemm(x, dz, True, False, impl)
    return dx, dw, column_sums(dz)
