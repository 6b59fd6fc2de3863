"""softmax_cross_entropy: loss and dlogits in one kernel, on
cpu/softmax_cross_entropy.py and cuda/softmax_cross_entropy.cu."""
from .. import checks
from ..cpu import softmax_cross_entropy as cpu_kernels
from ._common import cuda, empty, empty_like, on_gpu


def softmax_cross_entropy(logits, labels):
    """(losses, dlogits) from logits (N, C) and integer labels (N,) in [0, C).

    losses[i] = -log softmax(logits[i])[labels[i]]; dlogits = softmax(logits) - onehot,
    the gradient of losses.sum(). Stable for any finite logits.
    """
    logits = checks.float_array(logits, "logits", 2, 2)
    gpu = on_gpu(logits, labels)
    labels = checks.labels_for(labels, *logits.shape)
    if gpu:
        return cuda("softmax_cross_entropy").softmax_cross_entropy(logits, labels)
    losses = empty(logits.shape[0], dtype=logits.dtype)
    dlogits = empty_like(logits)
    cpu_kernels.softmax_cross_entropy(logits.size, logits, labels, losses, dlogits)
    return losses, dlogits
