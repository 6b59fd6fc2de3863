"""A smoke set of the CPU kernels against the NumPy reference, for slow or unusual hosts.

    python tools/smoke.py

Every op once per float dtype at a shape with ragged edges (the GEMM with all four
transposes), compared with kernels/reference.py at the tests' tolerances scaled for the
sizes here. Meant for a host where the full suite would take hours (an arm64 chroot under
qemu-user: tools/arm64_check.sh runs it there); prints one line per check and the
compile target, and exits non-zero if any check fails.
"""
import platform
import sys
import time

import numpy as np

import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R
from kernelgrad.kernels.ops.dropout import constants as dropout_constants
from kernelgrad.kernels.ops.dropout import relu_dropout_backward_cpu

RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def close(out, ref, rtol, scale=None):
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    bound = rtol * (np.abs(ref) + (np.abs(ref).mean() if scale is None else scale))
    return out.shape == ref.shape and bool(np.all(np.abs(out - ref) <= bound + 1e-300))


def checks(dtype):
    rng = np.random.default_rng(0)
    rtol = RTOL[dtype]

    def arr(*shape):
        return rng.standard_normal(shape).astype(dtype)
    def gemm(label, m, n, k, ta=False, tb=False):
        a, b = arr(*((k, m) if ta else (m, k))), arr(*((n, k) if tb else (k, n)))
        scale = R.matmul(np.abs(a), np.abs(b), ta, tb)
        return label, close(K.matmul(a, b, ta, tb, impl="numba"), R.matmul(a, b, ta, tb),
                            rtol * np.sqrt(k), scale)
    n, k = 45, 300
    for m in (37, 43):  # last row panels of 1 and 7 rows with MR = 12, 1 and 1 with 6
        for ta in (False, True):
            for tb in (False, True):
                yield gemm(f"matmul {m}x{n}x{k} ta={ta:d} tb={tb:d}", m, n, k, ta, tb)
    # Larger GEMMs: B and C past the cache threshold where tiles request what comes next
    # (all but 300 rows in float32), B packed by each part or once for all (by rows,
    # dtype and threads)
    for m in (300, 600):
        yield gemm(f"matmul {m}x300x300", m, 300, 300)
    # fewer rows than columns and a small A: C cut by columns on two or more threads
    yield gemm("matmul 40x600x300", 40, 600, 300)
    # a short side (the streaming kernel): X's rows contiguous or transposed, one block of
    # rows or several (partial sums), C one column or three rows wide
    for m, n in ((301, 1), (3, 301)):
        for ta in (False, True):
            for tb in (False, True):
                yield gemm(f"matmul {m}x{n}x{k} ta={ta:d} tb={tb:d}", m, n, k, ta, tb)
    x, w, bias = arr(33, 70), arr(70, 21), arr(21)
    scale = np.abs(x).astype(np.float64) @ np.abs(w) + np.abs(bias)
    for act in ("relu", "gelu", "tanh"):
        yield (f"linear {act}", close(K.linear(x, w, bias, act, impl="numba"),
                                      R.linear(x, w, bias, act)[0], rtol * 10, scale))
    z = arr(17, 33)
    for act in ("relu", "sigmoid", "tanh", "gelu"):
        yield f"{act} forward", close(K.activation(z, act), R.activation(z, act), rtol)
        dy = arr(17, 33)
        saved = z if act == "gelu" else R.activation(z, act).astype(dtype)
        yield (f"{act} backward", close(K.activation_backward(dy, saved, act),
                                        R.activation_backward(dy, saved, act), rtol * 4))
    logits, labels = arr(19, 10) * 3, rng.integers(0, 10, 19)
    losses, grad = K.softmax_cross_entropy(logits, labels)
    ref_losses, ref_grad = R.softmax_cross_entropy(logits, labels)
    yield "softmax cross-entropy", close(losses, ref_losses, rtol * 10) and close(
        grad, ref_grad, rtol * 10, 1.0)
    d = arr(1001)
    yield "dropout (Philox)", close(K.dropout(d, 0.3, 1234, 8), R.dropout(d, 0.3, 1234, 8),
                                    rtol)
    yield "bias_grad", _bias_check(rng, dtype, rtol)
    yield "ReLU + dropout backward in one pass", _relu_dropout_check(rng, dtype, rtol)
    p, g = arr(50), arr(50)
    m1, v1 = np.zeros_like(p), np.zeros_like(p)
    mine = [p.copy(), m1.copy(), v1.copy()]
    K.adam_step(mine[0], g, mine[1], mine[2], lr=1e-2, step=1)
    ref = R.adam_step(p, g, m1, v1, lr=1e-2, step=1)
    yield "adam step", all(close(a, b, rtol * 10) for a, b in zip(mine, ref))


def _bias_check(rng, dtype, rtol):
    dy = rng.standard_normal((65, 29)).astype(dtype)
    return close(K.bias_grad(dy), R.bias_grad(dy), rtol * 10, np.abs(dy).sum(0))


def _relu_dropout_check(rng, dtype, rtol):
    """What a captured step runs for a ReLU followed by dropout: the two backwards and the
    bias's column sums in one pass, from the dropout's output."""
    y = np.maximum(rng.standard_normal((37, 29)), 0).astype(dtype)  # a ReLU's output
    d, g = K.dropout(y, 0.3, 99, 4), rng.standard_normal((37, 29)).astype(dtype)
    dz, db = relu_dropout_backward_cpu(g, d, dropout_constants(0.3, np.dtype(dtype))[1], True)
    ref = R.activation_backward(R.dropout_backward(g, 0.3, 99, 4), y, "relu")
    return close(dz, ref, rtol) and close(db, R.bias_grad(ref), rtol * 10, np.abs(ref).sum(0))


def main():
    info = K.cpu_info()
    print(f"{platform.machine()}: target {info['target']}, {info['vector_bytes']}-byte "
          f"vectors, GEMM tile {info['gemm_tile_float32']} (float32)", flush=True)
    failed = 0
    for dtype in (np.float32, np.float64):
        start = time.perf_counter()
        for name, ok in checks(dtype):
            print(f"{'ok  ' if ok else 'FAIL'} {np.dtype(dtype).name:<8} {name}  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            failed += not ok
    print(f"{'all passed' if not failed else f'{failed} failed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
