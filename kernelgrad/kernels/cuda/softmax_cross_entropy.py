"""Launcher for softmax_cross_entropy.cu: picks the kernel by row length."""
import cupy

from .._spec import SOFTMAX_CACHED_FLOAT4S, SOFTMAX_WARP_MAX_CLASSES
from . import _module as m

WARPS_PER_BLOCK = 8
CACHED_PER_THREAD = 4 * SOFTMAX_CACHED_FLOAT4S  # row values a thread holds in registers
CACHED_MAX_CLASSES = 1024 * CACHED_PER_THREAD


def softmax_cross_entropy(logits, labels):
    """labels: any integer CuPy array of shape (N,); range errors are the kernel's (NaN
    row, device flag), since checking them here would synchronize."""
    N, C = logits.shape
    labels = cupy.ascontiguousarray(labels, dtype=cupy.int64)
    losses, dlogits = m.empty((N,)), m.empty((N, C))
    vec = C % 4 == 0 and m.aligned(logits, dlogits)
    rows = (logits, labels, losses, dlogits, m.i32(N), m.i32(C))
    if C <= SOFTMAX_WARP_MAX_CLASSES:
        threads = 32 * WARPS_PER_BLOCK
        m.launch("softmax_cross_entropy", "softmax_cross_entropy_warp",
                 m.grid(N * 32, threads), threads, (*rows, m.i32(vec), m.error_flag()))
    elif C <= CACHED_MAX_CLASSES:  # a thread per CACHED_PER_THREAD values, whole warps
        threads = -(-C // (32 * CACHED_PER_THREAD)) * 32
        kernel = "softmax_cross_entropy_cached_" + ("vec" if vec else "scalar")
        m.launch("softmax_cross_entropy", kernel, m.grid(N * threads, threads), threads,
                 (*rows, m.error_flag()))
    else:
        m.launch("softmax_cross_entropy", "softmax_cross_entropy_block", m.grid(N * 1024, 1024),
                 1024, (*rows, m.i32(vec), m.error_flag()))
    return losses, dlogits
