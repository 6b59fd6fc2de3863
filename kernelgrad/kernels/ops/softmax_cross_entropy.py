"""softmax_cross_entropy: loss and dlogits in one kernel, on
cpu/softmax_cross_entropy.py and cuda/softmax_cross_entropy.cu."""
import numpy as np

from .. import _alloc, checks
from ..cpu import softmax_cross_entropy as cpu_kernels
from ._common import cuda, empty, on_gpu

INT64 = np.dtype(np.int64)


def check_labels(labels, classes):
    """Raise unless every int64 label lies in [0, classes) (one pass, no copy)."""
    bad = cpu_kernels.labels_in_range(labels, classes)
    if bad >= 0:
        raise ValueError(f"label {labels[bad]} is outside [0, {classes}) for logits with "
                         f"{classes} classes")


def run_cpu(logits, labels):
    """The CPU kernel on plain C-contiguous logits (N, C) and int64 labels (N,) that
    check_labels has passed (kg.capture checks them before its forward pass)."""
    rows = logits.shape[0]
    losses = empty(rows, logits.dtype)
    dlogits = _alloc.empty_like(logits)
    cpu_kernels.softmax_cross_entropy(logits.size, logits, labels, losses, dlogits)
    return losses, dlogits


def softmax_cross_entropy(logits, labels):
    """(losses, dlogits) from logits (N, C) and integer labels (N,) in [0, C).

    losses[i] = -log softmax(logits[i])[labels[i]]; dlogits = softmax(logits) - onehot,
    the gradient of losses.sum(). Stable for any finite logits.
    """
    if (type(logits) is np.ndarray and type(labels) is np.ndarray and logits.ndim == 2
            and logits.dtype in checks.FLOAT_DTYPES and logits.flags.c_contiguous
            and logits.size and labels.dtype is INT64 and labels.flags.c_contiguous
            and labels.shape == logits.shape[:1]):
        check_labels(labels, logits.shape[1])  # the common case: the rest checked above
        return run_cpu(logits, labels)
    logits = checks.float_array(logits, "logits", 2, 2)
    gpu = on_gpu(logits, labels)
    labels = checks.labels_for(labels, *logits.shape)
    if gpu:
        return cuda("softmax_cross_entropy").softmax_cross_entropy(logits, labels)
    check_labels(labels, logits.shape[1])
    return run_cpu(logits, labels)
