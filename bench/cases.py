"""The benchmark cases: our kernel against the NumPy code a user would write instead.

Each case builds its inputs once, checks our output against the float64 reference (a
failing check marks the row FAIL and skips its timing), and knows how many bytes it must
move and how many FLOPs it does, for the roofline column.
"""
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R

F32 = np.float32
GELU_C = np.float32(np.sqrt(2 / np.pi))


@dataclass
class Case:
    op: str
    shape: str
    make: Callable[[np.random.Generator], dict]
    ours: Callable[[dict], object]
    baseline: Callable[[dict], object]
    check: Callable[[dict, object], float]     # returns the relative error of ours
    tolerance: float
    bytes_moved: Callable[[dict], int] = None   # memory-bound ops
    flops: Callable[[dict], int] = None         # compute-bound ops
    groups: tuple = field(default_factory=tuple)
    impl: str = None                            # for ops with several implementations
    shape_class: tuple = ()                     # autotune keys ("auto" reports its picks)


def rel_error(out, ref):
    out = np.asarray(out, np.float64)
    ref = np.asarray(ref, np.float64)
    if not np.all(np.isfinite(out)):
        return float("inf")
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-300))


def nbytes(*arrays):
    return int(sum(a.nbytes for a in arrays))


# ---------------------------------------------------------------- GEMMs ------------------

IMPLS = ("numba", "blas", "auto")  # auto's row names what it picked


def gemm_case(m, n, k, trans_a=False, trans_b=False, impl="numba"):
    def make(rng):
        a = rng.standard_normal((k, m) if trans_a else (m, k), dtype=F32)
        b = rng.standard_normal((n, k) if trans_b else (k, n), dtype=F32)
        return {"a": a, "b": b}
    op_a = "A^T" if trans_a else "A"
    op_b = "B^T" if trans_b else "B"
    return Case(
        f"matmul {op_a}@{op_b}", f"{m}x{n}x{k}", make,
        lambda d: K.matmul(d["a"], d["b"], trans_a, trans_b, impl=impl),
        lambda d: (d["a"].T if trans_a else d["a"]) @ (d["b"].T if trans_b else d["b"]),
        lambda d, out: rel_error(out, R.matmul(d["a"], d["b"], trans_a, trans_b)),
        1e-6 * np.sqrt(k), flops=lambda d: 2 * m * n * k, groups=("matmul",), impl=impl,
        shape_class=(K.gemm_shape_class("matmul", F32, m, n, k, trans_a, trans_b),))


def linear_case(batch, fan_in, fan_out, impl="numba"):
    def make(rng):
        return {"x": rng.standard_normal((batch, fan_in), dtype=F32),
                "w": (rng.standard_normal((fan_in, fan_out), dtype=F32) / F32(np.sqrt(fan_in))),
                "b": rng.standard_normal(fan_out, dtype=F32)}
    return Case(
        "linear relu fwd", f"{batch}x{fan_in}->{fan_out}", make,
        lambda d: K.linear(d["x"], d["w"], d["b"], "relu", impl=impl),
        lambda d: np.maximum(d["x"] @ d["w"] + d["b"], 0),
        lambda d, out: rel_error(out, R.linear(d["x"], d["w"], d["b"], "relu")[0]),
        1e-6 * np.sqrt(fan_in), flops=lambda d: 2 * batch * fan_in * fan_out, groups=("linear",),
        impl=impl, shape_class=(K.gemm_shape_class("linear", F32, batch, fan_out, fan_in),))


def linear_backward_case(batch, fan_in, fan_out, impl="numba"):
    def make(rng):
        d = {"x": rng.standard_normal((batch, fan_in), dtype=F32),
             "w": rng.standard_normal((fan_in, fan_out), dtype=F32) / F32(np.sqrt(fan_in)),
             "dy": rng.standard_normal((batch, fan_out), dtype=F32)}
        d["y"] = np.maximum(d["x"] @ d["w"], 0)
        return d

    def numpy_backward(d):
        dz = d["dy"] * (d["y"] > 0)
        return dz @ d["w"].T, d["x"].T @ dz, dz.sum(axis=0)

    def check(d, out):
        ref = R.linear_backward(d["dy"], d["x"], d["w"], d["y"], "relu")
        return max(rel_error(o, r) for o, r in zip(out, ref))
    return Case(
        "linear relu bwd", f"{batch}x{fan_in}->{fan_out}", make,
        lambda d: K.linear_backward(d["dy"], d["x"], d["w"], d["y"], "relu", impl=impl),
        numpy_backward, check, 1e-6 * np.sqrt(batch),
        flops=lambda d: 4 * batch * fan_in * fan_out, groups=("linear",), impl=impl,
        shape_class=(K.gemm_shape_class("matmul", F32, batch, fan_in, fan_out, False, True),
                     K.gemm_shape_class("matmul", F32, fan_in, fan_out, batch, True, False)))


# ---------------------------------------------------------------- elementwise ------------

NUMPY_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "leaky_relu": lambda x: np.where(x > 0, x, F32(0.01) * x),
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(GELU_C * (x + F32(0.044715) * x ** 3))),
}
NUMPY_ACTIVATION_GRADS = {
    "relu": lambda dy, y: dy * (y > 0),
    "sigmoid": lambda dy, y: dy * y * (1 - y),
    "tanh": lambda dy, y: dy * (1 - y * y),
    "leaky_relu": lambda dy, y: dy * np.where(y > 0, F32(1), F32(0.01)),
    "gelu": lambda dy, x: dy * numpy_gelu_grad(x),
}


def numpy_gelu_grad(x):
    """d gelu / dx as a user writes it in float32 NumPy."""
    t = np.tanh(GELU_C * (x + F32(0.044715) * x ** 3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + F32(3 * 0.044715) * x * x)


def activation_case(name, shape):
    def make(rng):
        x = rng.standard_normal(shape, dtype=F32) * 3
        dy = rng.standard_normal(shape, dtype=F32)
        return {"x": x, "dy": dy, "saved": x if name == "gelu" else K.activation(x, name)}
    fwd = Case(f"{name} fwd", "x".join(map(str, shape)), make,
               lambda d: K.activation(d["x"], name), lambda d: NUMPY_ACTIVATIONS[name](d["x"]),
               lambda d, out: rel_error(out, R.activation(d["x"], name)), 2e-6,
               bytes_moved=lambda d: 2 * d["x"].nbytes, groups=("activations",))
    bwd = Case(f"{name} bwd", "x".join(map(str, shape)), make,
               lambda d: K.activation_backward(d["dy"], d["saved"], name),
               lambda d: NUMPY_ACTIVATION_GRADS[name](d["dy"], d["saved"]),
               lambda d, out: rel_error(out, R.activation_backward(d["dy"], d["saved"], name)),
               4e-6, bytes_moved=lambda d: 3 * d["x"].nbytes, groups=("activations",))
    return [fwd, bwd]


def numpy_softmax_cross_entropy(logits, labels):
    rows = np.arange(len(labels))
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    losses = -log_probs[rows, labels]
    dlogits = np.exp(log_probs)
    dlogits[rows, labels] -= 1
    return losses, dlogits


def softmax_case(rows, classes):
    def make(rng):
        return {"z": rng.standard_normal((rows, classes), dtype=F32) * 4,
                "y": rng.integers(0, classes, rows)}

    def check(d, out):
        ref = R.softmax_cross_entropy(d["z"], d["y"])
        return max(rel_error(out[0], ref[0]), rel_error(out[1], ref[1]))
    return Case("softmax xent fwd+bwd", f"{rows}x{classes}", make,
                lambda d: K.softmax_cross_entropy(d["z"], d["y"]),
                lambda d: numpy_softmax_cross_entropy(d["z"], d["y"]), check, 4e-6,
                bytes_moved=lambda d: 2 * d["z"].nbytes, groups=("losses",))


def elementwise_loss_case(name, ours, numpy_version, reference, size):
    def make(rng):
        return {"p": rng.standard_normal(size, dtype=F32) * 3, "t": rng.random(size, dtype=F32)}

    def check(d, out):
        ref = reference(d["p"], d["t"])
        return max(rel_error(out[0], ref[0]), rel_error(out[1], ref[1]))
    return Case(f"{name} fwd+bwd", str(size), make, lambda d: ours(d["p"], d["t"]),
                lambda d: numpy_version(d["p"], d["t"]), check, 4e-6,
                bytes_moved=lambda d: 4 * d["p"].nbytes, groups=("losses",))


def numpy_bce(z, t):
    loss = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    return loss, 1 / (1 + np.exp(-z)) - t


def numpy_mse(p, t):
    diff = p - t
    return diff * diff, 2 * diff


def dropout_cases(shape, p=0.2):
    label = "x".join(map(str, shape))

    def make(rng):
        return {"x": rng.standard_normal(shape, dtype=F32), "rng": np.random.default_rng(0)}

    def numpy_forward(d):
        mask = d["rng"].random(d["x"].shape, dtype=F32) >= p
        return d["x"] * mask / F32(1 - p)

    def numpy_backward(d):  # the user's NumPy version keeps the mask from forward
        return d["x"] * d.setdefault("mask", d["rng"].random(shape, dtype=F32) >= p) / F32(1 - p)

    def check(d, out):
        return rel_error(out, R.dropout(d["x"], p, 1234, 0))
    return [
        Case("dropout fwd", label, make, lambda d: K.dropout(d["x"], p, 1234), numpy_forward,
             check, 2e-7, bytes_moved=lambda d: 2 * d["x"].nbytes, groups=("dropout",)),
        Case("dropout bwd", label, make, lambda d: K.dropout_backward(d["x"], p, 1234),
             numpy_backward, check, 2e-7, bytes_moved=lambda d: 2 * d["x"].nbytes,
             groups=("dropout",)),
    ]


def bias_grad_case(rows, cols):
    def make(rng):
        return {"dy": rng.standard_normal((rows, cols), dtype=F32)}
    return Case("bias grad", f"{rows}x{cols}", make, lambda d: K.bias_grad(d["dy"]),
                lambda d: d["dy"].sum(axis=0),
                lambda d, out: rel_error(out, R.bias_grad(d["dy"])), 1e-6 * np.sqrt(rows),
                bytes_moved=lambda d: d["dy"].nbytes, groups=("bias_grad",))


def adam_case(size, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    def make(rng):
        return {"p": rng.standard_normal(size, dtype=F32),
                "g": rng.standard_normal(size, dtype=F32),
                "m": np.zeros(size, F32), "v": np.zeros(size, F32), "step": [0]}

    def ours(d):
        d["step"][0] += 1
        K.adam_step(d["p"], d["g"], d["m"], d["v"], lr=lr, step=d["step"][0])
        return d["p"]

    def textbook(d):
        d["step"][0] += 1
        t = d["step"][0]
        d["m"] = beta1 * d["m"] + (1 - beta1) * d["g"]
        d["v"] = beta2 * d["v"] + (1 - beta2) * d["g"] ** 2
        m_hat = d["m"] / (1 - beta1 ** t)
        v_hat = d["v"] / (1 - beta2 ** t)
        d["p"] = d["p"] - lr * m_hat / (np.sqrt(v_hat) + eps)
        return d["p"]

    def check(d, out):
        fresh = make(np.random.default_rng(1))
        before = fresh["p"].copy()
        K.adam_step(fresh["p"], fresh["g"], fresh["m"], fresh["v"], lr=lr, step=1)
        ref = R.adam_step(before, fresh["g"], np.zeros(size), np.zeros(size), lr, beta1, beta2,
                          eps)[0]
        return rel_error(fresh["p"], ref)
    return Case("adam step", str(size), make, ours, textbook, check, 1e-6,
                bytes_moved=lambda d: 7 * d["p"].nbytes, groups=("optim",))


def all_cases(quick=False):
    big = 1 << 24  # 16M elements
    act_shapes = [(1024, 1024), (4096, 4096)]
    # Issue 5's shapes: square, and two MLP layers' forward GEMM with its backward's two
    # transposed GEMMs (dx = dz @ W^T, dW = x^T @ dz).
    gemms = [(1024, 1024, 1024, False, False), (256, 512, 784, False, False),
             (256, 784, 512, False, True), (784, 512, 256, True, False),
             (4096, 1024, 1024, False, False), (4096, 1024, 1024, False, True),
             (1024, 1024, 4096, True, False)]
    if not quick:
        gemms.insert(1, (2048, 2048, 2048, False, False))
    cases = [gemm_case(*shape, impl=impl) for shape in gemms for impl in IMPLS]
    cases += [linear_case(4096, 1024, 1024, impl) for impl in IMPLS]
    cases += [linear_backward_case(4096, 1024, 1024, impl) for impl in IMPLS]
    for name in K.ACTIVATIONS:
        for shape in act_shapes:
            cases += activation_case(name, shape)
    cases += [softmax_case(4096, 1000), softmax_case(1024, 16384)]
    cases += [elementwise_loss_case("bce with logits", K.binary_cross_entropy_with_logits,
                                    numpy_bce, R.binary_cross_entropy_with_logits, big),
              elementwise_loss_case("mse", K.mse, numpy_mse, R.mse, big)]
    for shape in [(4096, 1024), (4096, 4096)]:
        cases += dropout_cases(shape)
    cases += [bias_grad_case(4096, 1024), bias_grad_case(4096, 4096)]
    cases += [adam_case(1 << 20), adam_case(big)]
    return cases
