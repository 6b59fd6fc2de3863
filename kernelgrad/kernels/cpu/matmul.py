"""GEMM C = A @ B (+ bias, activation) for row-major A (M, K) and B (K, N).

Blocked for the caches: threads take blocks of MR rows of C; for each NC-wide column
panel the KC x NC block of B stays in L2 while the MR rows use it, and each C row
segment (NC floats) stays in L1 while K is swept four at a time (one C load and store
per four FMAs). Bias and activation are applied to each finished C segment while it is
in L1: the epilogue of the linear layer. Compute bound; this loop nest reaches a
fraction of OpenBLAS (see bench/results), a packed register-blocked micro-kernel is the
next step. Transposed operands are copied to row-major by the launcher (O(MK + KN)).
"""
from numba import prange

from ._jit import Specialized
from ._math import activate

MR, NC, KC = 8, 512, 256


@Specialized
def gemm(has_bias, act):
    """gemm[has_bias, act](a, b, c, bias, alpha): C = act(A @ B + bias)."""
    def gemm(a, b, c, bias, alpha):
        M, K = a.shape
        N = b.shape[1]
        for row_block in prange((M + MR - 1) // MR):
            i0 = row_block * MR
            i1 = min(i0 + MR, M)
            for j0 in range(0, N, NC):
                j1 = min(j0 + NC, N)
                for i in range(i0, i1):
                    c[i, j0:j1] = 0
                for k0 in range(0, K, KC):
                    k1 = min(k0 + KC, K)
                    k_main = k0 + (k1 - k0) // 4 * 4
                    for i in range(i0, i1):
                        # Views starting at column j0 and loops from 0: the index is provably
                        # non-negative, so Numba's wraparound check vanishes and LLVM vectorizes.
                        c_seg = c[i, j0:j1]
                        a_row = a[i]
                        for k in range(k0, k_main, 4):
                            a0, a1, a2, a3 = a_row[k], a_row[k + 1], a_row[k + 2], a_row[k + 3]
                            b0, b1 = b[k, j0:j1], b[k + 1, j0:j1]
                            b2, b3 = b[k + 2, j0:j1], b[k + 3, j0:j1]
                            for j in range(c_seg.size):
                                c_seg[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j]
                        for k in range(k_main, k1):
                            a0 = a_row[k]
                            b0 = b[k, j0:j1]
                            for j in range(c_seg.size):
                                c_seg[j] += a0 * b0[j]
                if has_bias or act != 0:
                    bias_seg = bias[j0:j1]
                    for i in range(i0, i1):
                        c_seg = c[i, j0:j1]
                        for j in range(c_seg.size):
                            v = c_seg[j] + bias_seg[j] if has_bias else c_seg[j]
                            c_seg[j] = activate(v, act, alpha)
    return gemm
