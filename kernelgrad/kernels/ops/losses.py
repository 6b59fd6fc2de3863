"""binary_cross_entropy_with_logits and mse: elementwise losses with their gradients, on
cpu/losses.py and cuda/losses.cu. Gradients are those of the *sum* of the losses."""
from .. import checks
from ..cpu import losses as cpu_kernels
from ._common import cuda, empty_like, on_gpu


def _elementwise_loss(kernel, pred, target, pred_name, target_name):
    """kernel: the loss kernel's name, the same in cpu/losses.py and cuda/losses.py."""
    pred = checks.float_array(pred, pred_name)
    target = checks.float_array(target, target_name)
    checks.same_shape(pred, pred_name, target, target_name)
    checks.same_dtype(pred, pred_name, target, target_name)
    if on_gpu(pred, target):
        return getattr(cuda("losses"), kernel)(pred, target)
    losses = empty_like(pred)
    grad = empty_like(pred)
    getattr(cpu_kernels, kernel)(pred.size, pred.reshape(-1), target.reshape(-1),
                                 losses.reshape(-1), grad.reshape(-1))
    return losses, grad


def binary_cross_entropy_with_logits(logits, targets):
    """(losses, dlogits) elementwise: -[t log s(z) + (1-t) log(1-s(z))], dlogits = s(z) - t."""
    return _elementwise_loss("binary_cross_entropy_with_logits", logits, targets,
                             "logits", "targets")


def mse(pred, target):
    """(losses, dpred) elementwise: (pred - target)^2 and 2 (pred - target)."""
    return _elementwise_loss("mse", pred, target, "pred", "target")
