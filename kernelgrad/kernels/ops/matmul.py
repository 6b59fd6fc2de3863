"""matmul, linear, linear_backward: GEMMs with an optional bias-and-activation epilogue,
on cpu/matmul.py (or OpenBLAS through NumPy) and cuda/matmul.cu, matmul_tc.cu (or cuBLAS).

On the CPU each call signature (shapes, dtype, transposes, activation, impl) is checked
once and kept as a plan (its sizes, shape class, thread partition and scratch size), so a
training step's repeated GEMMs pay a dictionary lookup, not the checks again.
"""

import numpy as np

from .. import _autotune, checks
from .._alloc import POOL_MIN_BYTES
from ..cpu import activations as cpu_activations
from ..cpu import matmul as cpu_kernels
from ..cpu import matmul_skinny as cpu_skinny
from ..cpu._jit import PARALLEL_MIN_WORK
from . import activations
from ._common import Plans, activation_id, alpha_of, cuda, empty, on_gpu
from .bias_grad import column_sums

# Below this many multiply-adds (about 0.1 ms) auto does not measure and runs ours: BLAS
# may win such a call by microseconds, but waking OpenBLAS's thread pool between Numba
# kernels costs far more (the demo MLP step: 0.39 ms all Numba, 1.85 ms with its three
# 10-wide GEMMs sent to OpenBLAS, although each measured faster there).
AUTO_MIN_MACS = 1 << 24
# A GEMM's work in the parallel-launch threshold's unit: one per 64 multiply-adds (two
# threads win 64x128x128 alone, 27 us against 32, but lose in a training step, where the
# pool's threads have gone to sleep between GEMMs: the demo step took 0.49 ms, not 0.38)
MACS_PER_WORK = 64

_scratch_buffers = {}
SCRATCH_KEEP_BYTES = 64 << 20  # a larger packing buffer is used once and let go
_plans = Plans()


def _scratch(size, dtype):
    """A reused buffer for the GEMM's packed operands. A fresh multi-megabyte array per
    call would page-fault on first touch every time (it is mmap'd and unmapped by malloc);
    reuse is safe because the kernels hold the GIL, so calls never overlap. One that a
    rare, huge product needs (a (1, K) @ (K, 1) packs 16 K floats) is not kept."""
    buf = _scratch_buffers.get(dtype)
    if buf is not None and buf.size >= size:
        return buf
    # 64-byte aligned (malloc gives 16): a packed panel's vector loads then never straddle
    # two cache lines
    raw = np.empty(size + 64 // dtype.itemsize, dtype)
    skip = -raw.ctypes.data % 64 // dtype.itemsize
    buf = raw[skip: skip + size]
    if buf.nbytes <= SCRATCH_KEEP_BYTES:
        _scratch_buffers[dtype] = buf
    return buf


class Gemm:
    """One checked CPU GEMM signature, act(op(A) @ op(B) + bias): everything about it that
    does not change from call to call."""

    def __init__(self, M, N, K, trans_a, trans_b, dtype, has_epilogue, act, alpha, impl):
        self.M, self.N, self.K = M, N, K
        self.trans_a, self.trans_b = bool(trans_a), bool(trans_b)
        self.dtype, self.act, self.alpha = dtype, act, alpha
        self.has_epilogue = has_epilogue
        self.key = gemm_shape_class("linear" if has_epilogue else "matmul", dtype, M, N, K,
                                    trans_a, trans_b)
        if impl == "auto" and M * N * K < AUTO_MIN_MACS:
            impl = "numba"
        self.impl = impl
        # C a few elements wide: a stream over the big operand (matmul_skinny.py), whose
        # work is the elements it reads; else the packed GEMM
        self.skinny = cpu_skinny.is_skinny(M, N, K)
        self.kernel = cpu_skinny.skinny if self.skinny else cpu_kernels.gemm
        self.work = max(M, N) * K // cpu_skinny.ELEMENTS_PER_WORK if self.skinny else \
            M * N * K // MACS_PER_WORK
        self.shape = (M, N)
        # below the parallel threshold: the serial build, no thread count to look up
        self.serial = self.work < PARALLEL_MIN_WORK
        self.serial_parts = (1,) if self.skinny else (1, 1)  # one part, in its arguments
        self.serial_size = self._scratch_size(self.serial_parts)
        # what the epilogue adds when there is no bias: one zero per column of C
        self.zero_bias = np.zeros(N if has_epilogue else 1, dtype)
        self._layouts = {}  # threads -> (parts: (parts_m, parts_n) or (parts,), scratch)
        self._flags = (has_epilogue, act, alpha, self.trans_a, self.trans_b)
        self._serial = None  # the serial build bound to this signature (on its first call)
        self.small_out = M * N * np.dtype(dtype).itemsize < POOL_MIN_BYTES
        # a narrow C from a transposed A: C^T computed instead (better_transposed)
        self.swapped = Gemm(N, M, K, not self.trans_b, False, dtype, False, 0, alpha, "numba") \
            if (not self.skinny and impl != "blas" and cpu_kernels.better_transposed(
                M, N, K, self.trans_a, has_epilogue, dtype)) else None

    def _scratch_size(self, parts):
        sizes = cpu_skinny.scratch_size if self.skinny else cpu_kernels.scratch_size
        return sizes(self.M, self.N, self.K, self.dtype, *parts)

    def _layout(self):
        threads = self.kernel.threads(self.work)
        layout = self._layouts.get(threads)
        if layout is None:
            parts = (threads,) if self.skinny else cpu_kernels.partition(
                self.M, self.N, self.K, self.dtype, threads)
            layout = self._layouts[threads] = (parts, self._scratch_size(parts))
        return layout

    def numba(self, a, b, bias=None):
        if self.swapped is not None:
            return self._numba_swapped(a, b)
        if self.serial:
            return self._numba_serial(a, b, bias)
        return self._numba_parallel(a, b, bias)

    def _numba_swapped(self, a, b, bias=None):
        c = empty(self.shape, self.dtype)
        np.copyto(c, self.swapped.numba(b, a).T)
        return c

    def _numba_serial(self, a, b, bias=None):
        # (an output under the pool's size straight from NumPy: _alloc.empty's tests of
        # its arguments cost a fortieth of a 64x128x128 product)
        c = np.empty(self.shape, self.dtype) if self.small_out else empty(self.shape,
                                                                           self.dtype)
        bias = self.zero_bias if bias is None else bias
        scratch = _scratch(self.serial_size, self.dtype)
        run = self._serial
        if run is None:  # every call of the plan passes arrays of these types
            run = self._serial = self.kernel.serial_entry(a, b, c, bias, *self._flags,
                                                          *self.serial_parts, scratch)
        run(a, b, c, bias, *self._flags, *self.serial_parts, scratch)
        return c

    def _numba_parallel(self, a, b, bias=None):
        c = empty(self.shape, self.dtype)
        bias = self.zero_bias if bias is None else bias
        parts, size = self._layout()
        self.kernel(self.work, a, b, c, bias, *self._flags, *parts, _scratch(size, self.dtype))
        return c

    def blas(self, a, b, bias=None):
        c = empty((self.M, self.N), self.dtype)
        np.matmul(a.T if self.trans_a else a, b.T if self.trans_b else b, out=c)
        if self.has_epilogue:
            bias = self.zero_bias if bias is None else bias
            cpu_activations.bias_activation(c.size, c, bias, self.act, self.alpha)
        return c

    def fast(self):
        """What a call of this plan runs, with the choice of implementation made: the
        plans' tables keep it (a Python call level less per call)."""
        if self.impl == "numba":
            if self.swapped is not None:
                return self._numba_swapped
            return self._numba_serial if self.serial else self._numba_parallel
        return self.blas if self.impl == "blas" else self

    def __call__(self, a, b, bias=None):
        impl = self.impl
        if impl == "auto":
            impl = _autotune.known(self.key)  # None until this shape class is measured
        if impl == "numba":
            return self.numba(a, b, bias)
        if impl == "blas":
            return self.blas(a, b, bias)
        return _autotune.run(self.key, "auto", {"numba": lambda: self.numba(a, b, bias),
                                                "blas": lambda: self.blas(a, b, bias)})


def _sizes(a, b, trans_a, trans_b):
    M = a.shape[1] if trans_a else a.shape[0]
    K = a.shape[0] if trans_a else a.shape[1]
    N = b.shape[0] if trans_b else b.shape[1]
    return M, N, K


def gemm(a, b, trans_a, trans_b, impl, bias=None, act=0, alpha=None):
    """act(op(a) @ op(b) + bias) by `impl` (already checked); operands checked."""
    M, N, K = _sizes(a, b, trans_a, trans_b)
    alpha = a.dtype.type(0) if alpha is None else alpha
    has_epilogue = bias is not None or act != 0
    if checks.is_cupy(a):
        key = gemm_shape_class("linear" if has_epilogue else "matmul", a.dtype, M, N, K,
                               trans_a, trans_b)
        return cuda("matmul").gemm(a, b, bool(trans_a), bool(trans_b), impl, key, bias, act,
                                   alpha)
    plan_key = ("gemm", M, N, K, bool(trans_a), bool(trans_b), a.dtype, has_epilogue, act,
                alpha, impl)
    plan = _plans.get(plan_key)
    if plan is None:
        plan = _plans.remember(plan_key, Gemm(M, N, K, trans_a, trans_b, a.dtype,
                                              has_epilogue, act, alpha, impl))
    return plan(a, b, bias)


def gemm_shape_class(op, dtype, M, N, K, trans_a=False, trans_b=False):
    """The key under which impl="auto" records its choice for this GEMM ("matmul", or
    "linear" for one with an epilogue); see impl_choices()."""
    return _autotune.shape_class(op, dtype, M, N, K, flags=(f"t{int(trans_a)}{int(trans_b)}",))


def linear_backward_shape_class(dtype, batch, fan_in, fan_out, trans_w=False):
    """The key under which impl="auto" records one library for both GEMMs of a
    linear_backward (dx = dz @ w.T, dw = x.T @ dz); see impl_choices(). trans_w: w given
    as PyTorch's weight.T, so dx's GEMM reads its weight untransposed."""
    return (f"linear_backward:"
            f"{gemm_shape_class('matmul', dtype, batch, fan_in, fan_out, False, not trans_w)}+"
            f"{gemm_shape_class('matmul', dtype, fan_in, fan_out, batch, True, False)}")


impl_choices = _autotune.choices
# impl checked for the device, with KERNELGRAD_IMPL applied to "auto"
resolve_impl = _autotune.check_impl
forget_impl_choices = _autotune.forget


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


def _plain(*arrays):
    """The fast path's test: C-contiguous, aligned numpy.ndarrays (dtype and shapes are in
    the key), what a plan's bound kernel takes."""
    for a in arrays:
        if a is not None:
            if type(a) is not np.ndarray:
                return False
            flags = a.flags
            if not (flags.c_contiguous and flags.aligned):
                return False
    return True


_env = _autotune.env_impl


def _transposed_view(x, trans):
    """(x, trans), or for the transposed view of a C-contiguous array (what `w.T` gives)
    the array it views and the flag flipped: read in place by the GEMM, not copied by a
    transposing copy on every call (256x512 @ (784x512).T, two threads: 1.43-1.59 ->
    0.72-0.91 ms)."""
    if type(x) is np.ndarray or checks.is_cupy(x):
        flags = x.flags
        if x.ndim == 2 and flags.f_contiguous and not flags.c_contiguous:
            return x.T, not trans
    return x, trans


def matmul(a, b, trans_a=False, trans_b=False, impl="auto"):
    """C = op(a) @ op(b), op transposing when trans_* is set; 2-D, any M, N, K.

    impl on the CPU: "numba" (our packed GEMM), "blas" (OpenBLAS through NumPy) or "auto"
    (the faster one for this shape class, measured once and cached; $KERNELGRAD_IMPL
    overrides auto). On the GPU: "cuda-tiled", "cuda-regblock", "cuda-tf32"
    (tensor cores; inputs rounded to TF32), "cublas" or "auto" (the fastest float32
    one, measured once per shape class and process). Transposed operands are read in place,
    whether given by the flags or as transposed views (`w.T`).
    """
    plain = _plain(a, b)
    if not plain:
        a, trans_a = _transposed_view(a, trans_a)
        b, trans_b = _transposed_view(b, trans_b)
        plain = _plain(a, b)
    if plain:
        key = ("matmul", a.shape, b.shape, a.dtype, b.dtype, trans_a, trans_b, impl, _env())
        plan = _plans.find(key)
        if plan is not None:
            return plan(a, b)
    impl = resolve_impl(impl, "cuda" if on_gpu(a, b) else "cpu")
    checked_a, checked_b = _operands(a, b, trans_a, trans_b)
    if checks.is_cupy(checked_a):
        return gemm(checked_a, checked_b, trans_a, trans_b, impl)
    M, N, K = _sizes(checked_a, checked_b, trans_a, trans_b)
    plan = Gemm(M, N, K, trans_a, trans_b, checked_a.dtype, False, 0,
                checked_a.dtype.type(0), impl)
    if plain:
        _plans.remember(("matmul", a.shape, b.shape, a.dtype, b.dtype, trans_a, trans_b,
                         impl, _env()), plan.fast())
    return plan(checked_a, checked_b)


class Linear:
    """A checked linear layer signature: its GEMM plan (with or without the activation in
    the epilogue) and, with return_preact, the activation kernel after it."""

    def __init__(self, gemm_plan, act, alpha, return_preact):
        self.gemm, self.act, self.alpha = gemm_plan, act, alpha
        self.return_preact = return_preact

    def __call__(self, x, w, b):
        if not self.return_preact:
            return self.gemm(x, w, b)
        z = self.gemm(x, w, b)
        return activations.forward(z, self.act, self.alpha), z


def linear_plan(batch, fan_in, fan_out, dtype, has_bias, act, alpha, return_preact, impl,
                trans_w=False):
    """The CPU plan of a checked linear signature (what linear() and kg.capture run): the
    GEMM has an epilogue only when it has a bias or an activation to apply. With trans_w
    the plan takes w as (out, in), PyTorch's layout."""
    gemm_act = 0 if return_preact else act
    return Linear(Gemm(batch, fan_out, fan_in, False, trans_w, dtype,
                       has_bias or gemm_act != 0, gemm_act, alpha, impl),
                  act, alpha, return_preact)


def _bias_key(b):
    return None if b is None else (b.shape, b.dtype)


def linear(x, w, b=None, activation=None, alpha=0.01, return_preact=False, impl="auto"):
    """y = act(x @ w + b); with impl "numba" in one kernel (bias and activation applied to
    each finished tile of the GEMM), with "blas" as an OpenBLAS GEMM and one fused pass.

    x (batch, in), w (in, out), b (out,) or None. With return_preact, returns (y, z)
    where z = x @ w + b; gelu's backward needs z. impl as for matmul. A w given as the
    transposed view of PyTorch's (out, in) weight (`weight.T`) is read in place.
    """
    plain = _plain(x, w, b)
    trans_w = False
    if not plain:
        w, trans_w = _transposed_view(w, False)
        plain = _plain(x, w, b)
    if plain:
        key = ("linear", x.shape, w.shape, trans_w, x.dtype, w.dtype, _bias_key(b),
               activation, alpha, return_preact, impl, _env())
        plan = _plans.find(key)
        if plan is not None:
            return plan(x, w, b)
    impl = resolve_impl(impl, "cuda" if on_gpu(x, w, b) else "cpu")
    checked_x = checks.float_array(x, "x", 2, 2)
    checked_w = checks.float_array(w, "w", 2, 2)
    checks.same_dtype(checked_x, "x", checked_w, "w")
    w_shape = checked_w.shape[::-1] if trans_w else checked_w.shape  # the caller's w
    if checked_x.shape[1] != w_shape[0]:
        raise ValueError(f"linear: x has shape {checked_x.shape} but w has shape "
                         f"{w_shape}; w must be (in_features={checked_x.shape[1]}, "
                         "out_features)")
    checked_b = b
    if b is not None:
        checked_b = checks.float_array(b, "b", 1, 1)
        checks.same_dtype(checked_x, "x", checked_b, "b")
        if checked_b.shape != (w_shape[1],):
            raise ValueError(f"linear: b has shape {checked_b.shape} but w has shape "
                             f"{w_shape}; b must be ({w_shape[1]},)")
    act = activation_id(activation)
    alpha_t = alpha_of(alpha, checked_x.dtype)
    if checks.is_cupy(checked_x):
        if not return_preact:
            return gemm(checked_x, checked_w, False, trans_w, impl, checked_b, act, alpha_t)
        z = gemm(checked_x, checked_w, False, trans_w, impl, checked_b, 0, alpha_t)
        return activations.forward(z, act, alpha_t), z
    plan = linear_plan(*checked_x.shape, w_shape[1], checked_x.dtype, checked_b is not None,
                       act, alpha_t, return_preact, impl, trans_w)
    if not return_preact:
        plan = plan.gemm.fast()  # the call it would make, without the calls around it
    if plain:
        _plans.remember(("linear", x.shape, w.shape, trans_w, x.dtype, w.dtype, _bias_key(b),
                         activation, alpha, return_preact, impl, _env()), plan)
    return plan(checked_x, checked_w, checked_b)


class LinearBackward:
    """A checked linear_backward signature: the activation's backward (if any), the two
    GEMMs on transposed operands read in place, and the column sums.

    With impl="auto" the two GEMMs are chosen together, one library for both, measured
    as a pair under their own key: chosen one by one, dx's GEMM once went to Numba and
    dw's to OpenBLAS, each faster alone, and the pair took 104 ms where either library
    alone took 63-66 (4096x1024->1024: each pool's threads spin while the other works)."""

    def __init__(self, act, alpha, dx_plan, dw_plan):
        self.act, self.alpha, self.dx, self.dw = act, alpha, dx_plan, dw_plan
        self.joint = dx_plan is not None and "auto" in (dx_plan.impl, dw_plan.impl)
        if self.joint:
            self.key = linear_backward_shape_class(dx_plan.dtype, dx_plan.M, dx_plan.N,
                                                   dx_plan.K, not dx_plan.trans_b)

    def _gemms(self, dz, x, w, impl):
        if impl == "numba":
            return self.dx.numba(dz, w, None), self.dw.numba(x, dz, None)
        return self.dx.blas(dz, w, None), self.dw.blas(x, dz, None)

    def __call__(self, dy, x, w, saved):
        dz = dy if not self.act else activations.backward(dy, saved, self.act, self.alpha)
        dx, dw = self.gemms(dz, x, w)
        return dx, dw, column_sums(dz)

    def gemms(self, dz, x, w):
        """(dx, dw) from the gradient dz of the layer's pre-activation."""
        if self.joint:
            impl = _autotune.known(self.key)  # None until this pair is measured
            if impl is not None:
                dx, dw = self._gemms(dz, x, w, impl)
            else:
                dx, dw = _autotune.run(self.key, "auto", {
                    name: (lambda name=name: self._gemms(dz, x, w, name))
                    for name in _autotune.IMPLS})
        else:
            dx = self.dx(dz, w) if self.dx is not None else None
            dw = self.dw(x, dz)
        return dx, dw


def linear_backward_plan(batch, fan_in, fan_out, dtype, act, alpha, need_input_grad, impl,
                         trans_w=False):
    """The CPU plan of a checked linear_backward signature (linear_backward and kg.capture):
    dx = dz @ w.T (when wanted) and dw = x.T @ dz, transposes read in place. With trans_w
    the plan takes w as (out, in), PyTorch's layout."""
    zero = dtype.type(0)
    return LinearBackward(
        act, alpha,
        Gemm(batch, fan_in, fan_out, False, not trans_w, dtype, False, 0, zero, impl)
        if need_input_grad else None,
        Gemm(fan_in, fan_out, batch, True, False, dtype, False, 0, zero, impl))


def _backward_key(dy, x, w, saved, activation, alpha, need_input_grad, impl, trans_w):
    """linear_backward's plan key, or None where the arguments are not plain arrays (the
    saved array counts only with an activation)."""
    if activation is None:
        saved = None
    elif saved is None or not _plain(saved):
        return None
    if not _plain(dy, x, w):
        return None
    return ("linear_backward", dy.shape, x.shape, w.shape, trans_w,
            None if saved is None else saved.shape, dy.dtype, x.dtype, w.dtype,
            None if saved is None else saved.dtype, activation, alpha,
            bool(need_input_grad), impl, _env())


def linear_backward(dy, x, w, y, activation=None, alpha=0.01, preact=None,
                    need_input_grad=True, impl="auto"):
    """(dx, dw, db) for y = act(x @ w + b); dx is None unless need_input_grad.

    `y` is the layer's output; gelu needs `preact` (z) instead. dx = dz @ w.T and
    dw = x.T @ dz are GEMMs on the transposed operands in place; impl as for matmul. w
    may be PyTorch's weight as `weight.T` (read in place; dw has w's shape, (in, out)).
    """
    saved = preact if activation == "gelu" else y
    trans_w = False
    key = _backward_key(dy, x, w, saved, activation, alpha, need_input_grad, impl, trans_w)
    if key is None and not _plain(w):
        w, trans_w = _transposed_view(w, False)
        key = _backward_key(dy, x, w, saved, activation, alpha, need_input_grad, impl, trans_w)
    plan = _plans.find(key) if key is not None else None
    if plan is not None:
        return plan(dy, x, w, saved)
    impl = resolve_impl(impl, "cuda" if on_gpu(dy, x, w, y, preact) else "cpu")
    x = checks.float_array(x, "x", 2, 2)
    w = checks.float_array(w, "w", 2, 2)
    dy = checks.float_array(dy, "dy", 2, 2)
    checks.same_dtype(x, "x", w, "w")
    checks.same_dtype(x, "x", dy, "dy")
    w_shape = w.shape[::-1] if trans_w else w.shape  # the caller's w
    expected = (x.shape[0], w_shape[1])
    if x.shape[1] != w_shape[0] or dy.shape != expected:
        raise ValueError(f"linear_backward: x {x.shape}, w {w_shape} and dy {dy.shape} do "
                         f"not fit (dy must be {expected})")
    act = activation_id(activation)
    alpha_t = alpha_of(alpha, x.dtype)
    if act:
        saved_name = "preact" if activation == "gelu" else "y"
        if saved is None:
            raise ValueError(f"linear_backward with {activation} needs {saved_name}")
        saved = checks.float_array(saved, saved_name, 2, 2)
        checks.same_shape(saved, saved_name, dy, "dy")
        checks.same_dtype(saved, saved_name, dy, "dy")
    if checks.is_cupy(x):
        dz = activations.backward(dy, saved, act, alpha_t) if act else dy
        dx = gemm(dz, w, False, not trans_w, impl) if need_input_grad else None
        return dx, gemm(x, dz, True, False, impl), column_sums(dz)
    plan = linear_backward_plan(*x.shape, w_shape[1], x.dtype, act, alpha_t,
                                need_input_grad, impl, trans_w)
    if key is not None:
        _plans.remember(key, plan)
    return plan(dy, x, w, saved)

