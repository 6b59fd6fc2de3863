"""activation, activation_backward: elementwise, on cpu/activations.py and
cuda/activations.cu."""
from .. import checks
from ..cpu import activations as cpu_kernels
from ._common import activation_id, alpha_of, cuda, empty_like, on_gpu


def forward(x, act, alpha):
    """act(x) for a checked array and activation id (linear's return_preact uses it too)."""
    if checks.is_cupy(x):
        if act == 0:
            return x.copy()
        return cuda("activations").forward(x, act, alpha)
    out = empty_like(x)
    cpu_kernels.activation_forward[act](x.size, x.reshape(-1), out.reshape(-1), alpha)
    return out


def backward(dy, saved, act, alpha):
    if checks.is_cupy(dy):
        if act == 0:
            return dy.copy()
        return cuda("activations").backward(dy, saved, act, alpha)
    dx = empty_like(dy)
    cpu_kernels.activation_backward[act](dy.size, dy.reshape(-1), saved.reshape(-1),
                                         dx.reshape(-1), alpha)
    return dx


def activation(x, name, alpha=0.01):
    """name(x) elementwise for name in ACTIVATIONS (gelu is the tanh form)."""
    x = checks.float_array(x, "x")
    return forward(x, activation_id(name), alpha_of(alpha, x.dtype))


def activation_backward(dy, saved, name, alpha=0.01):
    """dL/dx from dL/dy; `saved` is the forward output y (the input x for gelu)."""
    dy = checks.float_array(dy, "dy")
    saved = checks.float_array(saved, "saved")
    checks.same_shape(dy, "dy", saved, "saved")
    checks.same_dtype(dy, "dy", saved, "saved")
    on_gpu(dy, saved)
    return backward(dy, saved, activation_id(name), alpha_of(alpha, dy.dtype))
