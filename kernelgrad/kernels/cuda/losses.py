"""Launchers for losses.cu."""
import cupy

from . import _module as m

WARP_ROW_MAX_CLASSES = 1024  # up to here a warp per row (32 values per lane at most)
WARPS_PER_BLOCK = 8
CACHED_PER_THREAD = 32  # losses.cu's 4 x ITEMS: the row values a thread holds in registers
CACHED_MAX_CLASSES = 1024 * CACHED_PER_THREAD


def softmax_cross_entropy(logits, labels):
    """labels: any integer CuPy array of shape (N,); range errors are the kernel's (NaN
    row, device flag), since checking them here would synchronize."""
    N, C = logits.shape
    labels = cupy.ascontiguousarray(labels, dtype=cupy.int64)
    losses, dlogits = m.empty((N,)), m.empty((N, C))
    vec = C % 4 == 0 and m.aligned(logits, dlogits)
    rows = (logits, labels, losses, dlogits, m.i32(N), m.i32(C))
    if C <= WARP_ROW_MAX_CLASSES:
        threads = 32 * WARPS_PER_BLOCK
        m.launch("losses", "softmax_xent_warp", m.grid(N * 32, threads), threads,
                 (*rows, m.i32(vec), m.error_flag()))
    elif C <= CACHED_MAX_CLASSES:  # a thread per CACHED_PER_THREAD values, whole warps
        threads = -(-C // (32 * CACHED_PER_THREAD)) * 32
        kernel = "softmax_xent_cached_vec" if vec else "softmax_xent_cached_scalar"
        m.launch("losses", kernel, m.grid(N * threads, threads), threads,
                 (*rows, m.error_flag()))
    else:
        m.launch("losses", "softmax_xent_block", m.grid(N * 1024, 1024), 1024,
                 (*rows, m.i32(vec), m.error_flag()))
    return losses, dlogits


def _elementwise(kernel, pred, target):
    loss, grad = m.empty(pred.shape), m.empty(pred.shape)
    n = pred.size
    m.launch("losses", kernel, m.grid(n), m.BLOCK, (pred, target, loss, grad, m.i64(n)))
    return loss, grad


def binary_cross_entropy_with_logits(logits, targets):
    return _elementwise("bce_with_logits", logits, targets)


def mse(pred, target):
    return _elementwise("mse", pred, target)
