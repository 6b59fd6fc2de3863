"""Gradient clipping, as torch.nn.utils's."""
import math

from ..devices import xp_of
from ..kernels import checks
from .tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad.data for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients in place so that their total norm is at most max_norm; returns
    the total norm before clipping (a 0-d Tensor)."""
    max_norm = checks.finite(max_norm, "max_norm", 0.0)
    grads = _grads(parameters)
    if not grads:
        return Tensor(0.0)
    xp = xp_of(grads[0])
    if norm_type == math.inf:
        total = max(float(xp.abs(g).max()) for g in grads)
    else:
        norm_type = checks.finite(norm_type, "norm_type", 0.0, low_open=True)
        total = sum(float((xp.abs(g.astype("float64")) ** norm_type).sum())
                    for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"the total norm of the gradients is {total}")
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g *= g.dtype.type(scale)
    return Tensor(total, dtype=grads[0].dtype)


def clip_grad_value_(parameters, clip_value):
    """Clip every gradient element to [-clip_value, clip_value] in place."""
    clip_value = checks.finite(clip_value, "clip_value", 0.0)
    for g in _grads(parameters):
        xp_of(g).clip(g, -clip_value, clip_value, out=g)
