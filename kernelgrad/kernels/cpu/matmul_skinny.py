"""GEMMs with one side of C a few elements wide: a perceptron's or a binary classifier's
(M, K) @ (K, 1), its gradients, one sample's (1, K) @ (K, N).

The packed GEMM (matmul.py) computes C in tiles at least one vector wide (16 floats with
AVX-512); for a C one column wide it does that many times the multiply-adds and packs an
operand it then reads once: (512, 1024) @ (1024, 1) took 157 us where NumPy's
matrix-vector product took 13. Such a product is a stream over the big operand with the
small one in L1, and this kernel reads the big operand once, in its own layout
(docs/gemm.md has the measurements).

C (M x N) is seen as out (P x Q) = X (P x K) @ Y (K x Q): X is op(A) when N is the short
side and op(B)^T when M is; Y is the other operand, read as Yt = Y^T (Q rows of K,
gathered into scratch when stored the other way). Two ways to stream X, by its layout:
- X's rows contiguous: dot products, four rows of X against one row of Yt at a time (each
  of Yt's vectors loaded once for the four), two accumulators a row, lanes added in a tree.
- X stored transposed (K rows of P): out^T[q, seg] += X^T[k, seg] * Y[k, q], four rows
  of X^T per pass over a segment of sums held in L1, so each element adds its k terms in
  order; past CHUNK_ROWS rows, each block of rows sums into partial sums of its own
  (whole rows per thread) and the blocks are added in block order.
Neither order depends on the thread count. The bias and activation are applied to each
part's share of C once it is done.
"""
import numpy as np
from numba import njit, prange

from ._jit import kernel
from ._simd import (
    VECTOR_BYTES,
    borrowed,
    lanes,
    vadd,
    vbroadcast,
    vfma,
    vload,
    vload_first,
    vreduce_add,
    vstore,
    vstore_first,
    vzero,
)
from .activations import epilogue

# Which products come here (two threads against the packed GEMM, P x q x K for P of 784
# to 4096, docs/gemm.md): a short side of at most SKINNY_MAX either way, and a C of at
# most SKINNY_COLUMNS columns (the packed GEMM's tiles are 16 or 32 wide). At 8 columns,
# or 10 (a 10-class layer), the packed GEMM won some layouts and sizes and lost others.
SKINNY_MAX = 4
SKINNY_COLUMNS = 6
SEGMENT_BYTES = 16 << 10   # of a transposed X's sums at a time, all q, held in L1
CHUNK_ROWS = 128           # rows of a transposed X per block of partial sums
# Elements of X streamed per unit of the parallel threshold's work: two threads pay from
# about 130K (two threads against one, AVX-512: 128x784 @ 784x1 6.0 against 5.6 us,
# 256x784 7.9 against 10.0; a 10-wide X^T 40.2 against 41.2 and 67 against 82)
ELEMENTS_PER_WORK = 4


def is_skinny(M, N, K):
    """Whether C = op(A) @ op(B), (M x K) @ (K x N), goes to this kernel (K = 1, an outer
    product, is the packed GEMM's best case)."""
    return K > 1 and (min(M, N) <= SKINNY_MAX or N <= SKINNY_COLUMNS)


def scratch_size(M, N, K, dtype, parts):
    """Elements of scratch a skinny call needs: Yt where it is gathered, each block of
    CHUNK_ROWS rows' partial sums (whole vectors per short-side row), each part's sums of
    one segment."""
    q, p = min(M, N), max(M, N)
    itemsize = np.dtype(dtype).itemsize
    lanes = VECTOR_BYTES // itemsize
    padded = -(-p // lanes) * lanes  # whole vectors, as the kernel pads
    seg = max(lanes, SEGMENT_BYTES // itemsize // q)
    return q * K + -(-K // CHUNK_ROWS) * q * padded + parts * q * seg


@njit(inline="always")
def _dot(x, row, K, yt, yq):
    """x[row : row + K] . yt[yq : yq + K], added in the order _dots4 adds each of its rows
    (so a row's result does not depend on how the rows were grouped among threads)."""
    L = lanes(x)
    a = vzero(x)
    b = vzero(x)
    k = 0
    while k + 2 * L <= K:
        a = vfma(vload(x, row + k), vload(yt, yq + k), a)
        b = vfma(vload(x, row + k + L), vload(yt, yq + k + L), b)
        k += 2 * L
    if k + L <= K:
        a = vfma(vload(x, row + k), vload(yt, yq + k), a)
        k += L
    if k < K:  # the row's last K - k elements: nothing read past them
        b = vfma(vload_first(x, row + k, K - k), vload_first(yt, yq + k, K - k), b)
    return vreduce_add(vadd(a, b))


@njit(inline="always")
def _dots4(x, row, K, yt, yq):
    """_dot of x's four rows from `row` (K apart) with yt[yq : yq + K]: each of Yt's
    vectors loaded once for the four, two accumulators a row."""
    L = lanes(x)
    a0 = vzero(x)
    a1 = vzero(x)
    a2 = vzero(x)
    a3 = vzero(x)
    b0 = vzero(x)
    b1 = vzero(x)
    b2 = vzero(x)
    b3 = vzero(x)
    r1, r2, r3 = row + K, row + 2 * K, row + 3 * K
    k = 0
    while k + 2 * L <= K:
        y0 = vload(yt, yq + k)
        y1 = vload(yt, yq + k + L)
        a0 = vfma(vload(x, row + k), y0, a0)
        a1 = vfma(vload(x, r1 + k), y0, a1)
        a2 = vfma(vload(x, r2 + k), y0, a2)
        a3 = vfma(vload(x, r3 + k), y0, a3)
        b0 = vfma(vload(x, row + k + L), y1, b0)
        b1 = vfma(vload(x, r1 + k + L), y1, b1)
        b2 = vfma(vload(x, r2 + k + L), y1, b2)
        b3 = vfma(vload(x, r3 + k + L), y1, b3)
        k += 2 * L
    if k + L <= K:
        y0 = vload(yt, yq + k)
        a0 = vfma(vload(x, row + k), y0, a0)
        a1 = vfma(vload(x, r1 + k), y0, a1)
        a2 = vfma(vload(x, r2 + k), y0, a2)
        a3 = vfma(vload(x, r3 + k), y0, a3)
        k += L
    if k < K:  # each row's last K - k elements: nothing read past them
        y1 = vload_first(yt, yq + k, K - k)
        b0 = vfma(vload_first(x, row + k, K - k), y1, b0)
        b1 = vfma(vload_first(x, r1 + k, K - k), y1, b1)
        b2 = vfma(vload_first(x, r2 + k, K - k), y1, b2)
        b3 = vfma(vload_first(x, r3 + k, K - k), y1, b3)
    return (vreduce_add(vadd(a0, b0)), vreduce_add(vadd(a1, b1)), vreduce_add(vadd(a2, b2)),
            vreduce_add(vadd(a3, b3)))


@njit(inline="always")
def _accumulate(x, P, s_lo, width, k_lo, k_hi, yt, K, Q, sums, off, stride):
    """sums[off + q * stride + i] = sum over k in [k_lo, k_hi), in k's order, of
    X^T[k, s_lo + i] * Yt[q, k], for i < width and every q: four rows of X^T per pass over
    the sums, which stay in L1. Each q's run of sums has room for whole vectors."""
    L = lanes(x)
    for q in range(Q):
        for v in range(0, width, L):
            vstore(sums, off + q * stride + v, vzero(x))
    k = k_lo
    while k < k_hi:
        depth = min(4, k_hi - k)  # the last pass takes the one to three rows left
        row = k * P + s_lo
        for q in range(Q):
            y0 = vbroadcast(yt, q * K + k)
            y1 = vbroadcast(yt, q * K + k + min(1, depth - 1))
            y2 = vbroadcast(yt, q * K + k + min(2, depth - 1))
            y3 = vbroadcast(yt, q * K + k + min(3, depth - 1))
            base = off + q * stride
            start = 0
            if depth == 4:  # whole vectors of four rows: no masks, no tests
                start = width // L * L
                for v in range(0, start, L):
                    acc = vfma(vload(x, row + v), y0, vload(sums, base + v))
                    acc = vfma(vload(x, row + P + v), y1, acc)
                    acc = vfma(vload(x, row + 2 * P + v), y2, acc)
                    acc = vfma(vload(x, row + 3 * P + v), y3, acc)
                    vstore(sums, base + v, acc)
            for v in range(start, width, L):
                n = min(L, width - v)  # masked: nothing read past X's rows
                acc = vfma(vload_first(x, row + v, n), y0, vload(sums, base + v))
                if depth > 1:
                    acc = vfma(vload_first(x, row + P + v, n), y1, acc)
                if depth > 2:
                    acc = vfma(vload_first(x, row + 2 * P + v, n), y2, acc)
                if depth > 3:
                    acc = vfma(vload_first(x, row + 3 * P + v, n), y3, acc)
                vstore(sums, base + v, acc)
        k += depth


@kernel
def skinny(a, b, c, bias, has_epilogue, act, alpha, trans_a, trans_b, parts, scratch):
    """C = op(A) @ op(B), then act(C + bias) if has_epilogue, for a C with a short side
    (right for any width; is_skinny says where it beats the packed GEMM). C's long side is
    cut into `parts` equal ranges, one per thread, and a transposed X's rows into blocks
    of CHUNK_ROWS. `scratch` holds at least scratch_size(...) elements."""
    a, b, c, bias, scratch = borrowed(a), borrowed(b), borrowed(c), borrowed(bias), \
        borrowed(scratch)
    M, N = c.shape
    K = a.shape[0] if trans_a else a.shape[1]
    flat_c = c.reshape(M * N)
    L = lanes(flat_c)
    short_n = N <= M  # C = out (P x Q); else C = out^T (Q x P)
    if short_n:
        P, Q, x, x_rows, y, y_rows = M, N, a, not trans_a, b, trans_b
    else:
        P, Q, x, x_rows, y, y_rows = N, M, b, trans_b, a, not trans_a
    flat_x = x.reshape(x.size)
    flat_y = y.reshape(y.size)
    # Yt (Q x K, rows contiguous): the operand itself when stored that way (or one row)
    yt = flat_y
    if not y_rows and Q > 1:
        yt = scratch[:Q * K]
        for k in range(K):
            for q in range(Q):
                yt[q * K + k] = flat_y[k * Q + q]
    # a segment's sums for every q fill at most SEGMENT_BYTES (and at least a vector each)
    seg = min(max(L, SEGMENT_BYTES // flat_c.itemsize // Q // L * L), (P + L - 1) // L * L)
    chunks = (K + CHUNK_ROWS - 1) // CHUNK_ROWS
    padded = (P + L - 1) // L * L  # a chunk's sums for one q: whole vectors
    rest = scratch[Q * K:]
    if not x_rows and chunks > 1:
        # X^T's rows in blocks: each thread reads whole rows, front to back (split by
        # columns, a thread's share of each row was a short stream, and the hardware's
        # requests ran on into the other thread's share). Each block sums its rows into
        # its own partial sums, and the blocks' sums are added in block order: the same
        # for any thread count.
        for chunk in prange(chunks):
            for s_lo in range(0, P, seg):
                _accumulate(flat_x, P, s_lo, min(seg, P - s_lo), chunk * CHUNK_ROWS,
                            min(K, (chunk + 1) * CHUNK_ROWS), yt, K, Q, rest,
                            chunk * Q * padded + s_lo, padded)
    for part in prange(parts):
        p0 = part * P // parts
        p1 = (part + 1) * P // parts
        own = chunks * Q * padded + part * Q * seg  # this part's sums of a segment
        if x_rows:
            p = p0
            while p < p1:
                rows = 4 if p + 4 <= p1 else 1
                for q in range(Q):
                    if rows == 4:
                        t0, t1, t2, t3 = _dots4(flat_x, p * K, K, yt, q * K)
                        for r, total in enumerate((t0, t1, t2, t3)):
                            flat_c[(p + r) * Q + q if short_n else q * P + p + r] = total
                    else:
                        flat_c[p * Q + q if short_n else q * P + p] = _dot(flat_x, p * K, K,
                                                                           yt, q * K)
                p += rows
        elif chunks > 1:  # the blocks' sums, added in block order, a vector at a time
            for q in range(Q):
                for v in range(p0, p1, L):
                    n = min(L, p1 - v)
                    total = vload_first(rest, q * padded + v, n)
                    for chunk in range(1, chunks):
                        total = vadd(total, vload_first(rest, (chunk * Q + q) * padded + v, n))
                    if Q == 1 or not short_n:  # C's run of p is contiguous
                        vstore_first(flat_c, q * P + v if not short_n else v, total, n)
                    else:  # C's column q: through a vector's worth of scratch
                        vstore(rest, own, total)
                        for i in range(n):
                            flat_c[(v + i) * Q + q] = rest[own + i]
        else:
            for s_lo in range(p0, p1, seg):
                width = min(seg, p1 - s_lo)
                _accumulate(flat_x, P, s_lo, width, 0, K, yt, K, Q, rest, own, seg)
                for q in range(Q):
                    for i in range(width):
                        p = s_lo + i
                        flat_c[p * Q + q if short_n else q * P + p] = rest[own + q * seg + i]
        if has_epilogue and p1 > p0:
            if short_n:
                epilogue(c, p0, p1 - p0, 0, N, bias, act, alpha)
            else:
                epilogue(c, 0, M, p0, p1 - p0, bias, act, alpha)
