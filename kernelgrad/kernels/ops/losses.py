"""binary_cross_entropy_with_logits and mse: elementwise losses with their gradients, on
cpu/losses.py and cuda/losses.cu. Gradients are those of the *sum* of the losses."""
import numpy as np

from .. import _alloc, checks
from ..cpu import losses as cpu_kernels
from ._common import cuda, on_gpu


def _run_cpu(kernel, pred, target):
    losses = _alloc.empty_like(pred)
    grad = _alloc.empty_like(pred)
    kernel(pred.size, pred.ravel(), target.ravel(), losses.ravel(), grad.ravel())
    return losses, grad


def _elementwise_loss(kernel, pred, target, pred_name, target_name):
    """kernel: the loss kernel's name, the same in cpu/losses.py and cuda/losses.py."""
    if (type(pred) is np.ndarray and type(target) is np.ndarray
            and pred.dtype in checks.FLOAT_DTYPES and pred.dtype is target.dtype
            and pred.shape == target.shape and pred.size and pred.flags.c_contiguous
            and target.flags.c_contiguous):
        return _run_cpu(getattr(cpu_kernels, kernel), pred, target)
    pred = checks.float_array(pred, pred_name)
    target = checks.float_array(target, target_name)
    checks.same_shape(pred, pred_name, target, target_name)
    checks.same_dtype(pred, pred_name, target, target_name)
    if on_gpu(pred, target):
        return getattr(cuda("losses"), kernel)(pred, target)
    return _run_cpu(getattr(cpu_kernels, kernel), pred, target)


def binary_cross_entropy_with_logits(logits, targets):
    """(losses, dlogits) elementwise: -[t log s(z) + (1-t) log(1-s(z))], dlogits = s(z) - t."""
    return _elementwise_loss("binary_cross_entropy_with_logits", logits, targets,
                             "logits", "targets")


def mse(pred, target):
    """(losses, dpred) elementwise: (pred - target)^2 and 2 (pred - target)."""
    return _elementwise_loss("mse", pred, target, "pred", "target")
