"""activation, activation_backward: elementwise, on cpu/activations.py and
cuda/activations.cu."""
import numpy as np

from .. import _alloc, checks
from ..cpu import activations as cpu_kernels
from ..cpu._jit import PARALLEL_MIN_WORK
from ._common import Plans, activation_id, alpha_of, cuda, empty_like, on_gpu, plain

_forward_plans, _backward_plans = Plans(), Plans()


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


def activation(x, name, alpha=0.01):
    """name(x) elementwise for name in ACTIVATIONS (gelu is the tanh form)."""
    if type(x) is np.ndarray and x.flags.c_contiguous and x.size:  # plain(), inlined
        try:
            plan = _forward_plans.get((name, alpha, x.dtype))  # only float dtypes are in it
        except TypeError:
            plan = None
        if plan is not None:
            kernel, alpha_t = plan
            out = _alloc.empty_like(x)
            if x.size < PARALLEL_MIN_WORK:
                kernel.serial(x.ravel(), out.ravel(), alpha_t)
            else:
                kernel(x.size, x.ravel(), out.ravel(), alpha_t)
            return out
    x = checks.float_array(x, "x")
    act, alpha_t = activation_id(name), alpha_of(alpha, x.dtype)
    if not checks.is_cupy(x):
        _forward_plans.remember((name, alpha, x.dtype),
                                (cpu_kernels.activation_forward[act], alpha_t))
    return forward(x, act, alpha_t)


def activation_backward(dy, saved, name, alpha=0.01):
    """dL/dx from dL/dy; `saved` is the forward output y (the input x for gelu)."""
    if plain(dy) and plain(saved) and dy.shape == saved.shape and dy.dtype is saved.dtype:
        plan = _backward_plans.find((name, alpha, dy.dtype))
        if plan is not None:
            kernel, alpha_t = plan
            dx = _alloc.empty_like(dy)
            kernel(dy.size, dy.ravel(), saved.ravel(), dx.ravel(), alpha_t)
            return dx
    dy = checks.float_array(dy, "dy")
    saved = checks.float_array(saved, "saved")
    checks.same_shape(dy, "dy", saved, "saved")
    checks.same_dtype(dy, "dy", saved, "saved")
    on_gpu(dy, saved)
    act, alpha_t = activation_id(name), alpha_of(alpha, dy.dtype)
    if not checks.is_cupy(dy):
        _backward_plans.remember((name, alpha, dy.dtype),
                                 (cpu_kernels.activation_backward[act], alpha_t))
    return backward(dy, saved, act, alpha_t)
