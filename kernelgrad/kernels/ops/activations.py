"""activation, activation_backward: elementwise, on cpu/activations.py and
cuda/activations.cu."""
import numpy as np

from .. import _alloc, checks
from ..cpu import activations as cpu_kernels
from ..cpu._jit import PARALLEL_MIN_WORK
from ._common import Plans, activation_id, alpha_of, cuda, empty_like, on_gpu

_forward_plans, _backward_plans = Plans(), Plans()
# Inputs this small run the plan's serial entry on an output from np.empty (under the
# pool's size, float64 included); larger ones go through the launcher and the pool.
SMALL = min(PARALLEL_MIN_WORK, _alloc.POOL_MIN_BYTES // 8)


def forward(x, act, alpha):
    """act(x) for a checked array and activation id (linear's return_preact uses it too)."""
    if checks.is_cupy(x):
        if act == 0:
            return x.copy()
        return cuda("activations").forward(x, act, alpha)
    out = empty_like(x)
    cpu_kernels.activation_forward[act](x.size, x.ravel(), out.ravel(), alpha)
    return out


def backward(dy, saved, act, alpha):
    if checks.is_cupy(dy):
        if act == 0:
            return dy.copy()
        return cuda("activations").backward(dy, saved, act, alpha)
    dx = empty_like(dy)
    cpu_kernels.activation_backward[act](dy.size, dy.ravel(), saved.ravel(), dx.ravel(), alpha)
    return dx


def _plan(kernel, alpha_t, dtype, size, arrays):
    """(kernel, alpha, small): `small` runs an input below the parallel threshold, the
    serial build bound to the checked types when this first call is one (see _jit.entry),
    else through its dispatcher (a large-input plan then compiles no serial code)."""
    if size >= PARALLEL_MIN_WORK:
        return kernel, alpha_t, kernel.serial
    sample = np.empty(1, dtype)
    return kernel, alpha_t, kernel.serial_entry(*[sample] * arrays, alpha_t)


def _plain(x):
    """The fast paths' layout test (dtype is in the plan's key): a C-contiguous, aligned
    numpy.ndarray with data, what the plan's bound kernel takes."""
    if type(x) is not np.ndarray:
        return False
    flags = x.flags
    return flags.c_contiguous and flags.aligned and x.size > 0


def activation(x, name, alpha=0.01):
    """name(x) elementwise for name in ACTIVATIONS (gelu is the tanh form)."""
    if type(x) is np.ndarray and x.size:  # _plain, inlined: a call is a tenth of relu 64x128
        flags = x.flags
        try:
            plan = _forward_plans.get((name, alpha, x.dtype))  # only float dtypes are in it
        except TypeError:
            plan = None
        if plan is not None and flags.c_contiguous and flags.aligned:
            kernel, alpha_t, small = plan
            n = x.size
            if n < SMALL:
                out = _alloc.empty_small(x.shape, x.dtype)
                small(x.ravel(), out.ravel(), alpha_t)
            else:
                out = _alloc.empty_like(x)
                kernel(n, x.ravel(), out.ravel(), alpha_t)
            return out
    x = checks.float_array(x, "x")
    act, alpha_t = activation_id(name), alpha_of(alpha, x.dtype)
    if not checks.is_cupy(x):
        _forward_plans.remember((name, alpha, x.dtype), _plan(
            cpu_kernels.activation_forward[act], alpha_t, x.dtype, x.size, 2))
    return forward(x, act, alpha_t)


def activation_backward(dy, saved, name, alpha=0.01):
    """dL/dx from dL/dy; `saved` is the forward output y (the input x for gelu)."""
    if (_plain(dy) and _plain(saved) and dy.shape == saved.shape
            and dy.dtype is saved.dtype):
        plan = _backward_plans.find((name, alpha, dy.dtype))
        if plan is not None:
            kernel, alpha_t, small = plan
            n = dy.size
            if n < SMALL:
                dx = _alloc.empty_small(dy.shape, dy.dtype)
                small(dy.ravel(), saved.ravel(), dx.ravel(), alpha_t)
            else:
                dx = _alloc.empty_like(dy)
                kernel(n, dy.ravel(), saved.ravel(), dx.ravel(), alpha_t)
            return dx
    dy = checks.float_array(dy, "dy")
    saved = checks.float_array(saved, "saved")
    checks.same_shape(dy, "dy", saved, "saved")
    checks.same_dtype(dy, "dy", saved, "saved")
    on_gpu(dy, saved)
    act, alpha_t = activation_id(name), alpha_of(alpha, dy.dtype)
    if not checks.is_cupy(dy):
        _backward_plans.remember((name, alpha, dy.dtype), _plan(
            cpu_kernels.activation_backward[act], alpha_t, dy.dtype, dy.size, 3))
    return backward(dy, saved, act, alpha_t)
