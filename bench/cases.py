"""The benchmark cases, one factory per op, for either device: our kernel against what a
user of that device would run instead (NumPy or CuPy as written by hand, PyTorch where it
is installed, OpenBLAS or cuBLAS for the GEMMs).

A case builds its inputs on the device (`make(rng, backend)`), checks our output against
the float64 reference before anything is timed (a failing check marks the row FAIL), and
knows how many bytes it must move or FLOPs it does, for the roofline column. The first
baseline is the one the ratio is taken against; a GEMM's is the fastest of its baselines
(the best BLAS on the machine).
"""
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R

from .forced_blas import forced_openblas

F32, F64 = np.float32, np.float64
GELU_C = F32(np.sqrt(2 / np.pi))
SAMPLE = 1 << 20      # on the GPU, outputs are checked on their first SAMPLE elements
SAMPLE_ROWS = 64      # ... or rows: the host's float64 reference would take minutes


@dataclass
class Case:
    op: str                                  # the op's stem (kernels/ops/<op>.py)
    name: str                                # the row's label
    shape: str
    make: Callable                           # (rng, backend) -> dict of inputs
    ours: Callable[[dict], object]
    baselines: dict                          # library -> (dict -> result)
    check: Callable                          # (dict, ours' output, backend) -> rel. error
    tolerance: float
    bytes_moved: Callable = None             # memory-bound ops
    flops: Callable = None                   # compute-bound ops
    impl: str = None                         # for ops with several implementations
    shape_class: tuple = ()                  # autotune keys ("auto" reports its picks)
    anchor: str = "first"                    # "first" baseline, or "fastest" (GEMMs)
    group: str = "large"                     # "large" or "small" (per-call cost)
    before_each: Callable = None             # (dict) -> None, untimed, before every call
    extra: dict = field(default_factory=dict)


def rel_error(out, ref):
    out = np.asarray(out, np.float64)
    ref = np.asarray(ref, np.float64)
    if not np.all(np.isfinite(out)):
        return float("inf")
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-300))


def head(a, backend, rows=False):
    """What is checked: all of `a` on the CPU; on the GPU its first rows or elements."""
    if backend.name == "cpu":
        return backend.host(a)
    return backend.host(a[:SAMPLE_ROWS] if rows else a.reshape(-1)[:SAMPLE])


def _label(shape):
    return "x".join(map(str, shape))


def forced_openblas_of(backend):
    """The child process running OpenBLAS forced to the widest kernel the compile target
    uses, where NumPy's picked a narrower one (forced_blas.py); else None."""
    return forced_openblas() if backend.name == "cpu" else None


def _torch_baseline(backend, fn):
    """{"torch": fn} where PyTorch runs on this device, else {}."""
    return {"torch": fn} if backend.torch is not None else {}


# ---------------------------------------------------------------- GEMMs ------------------

def _with_tf32(backend, fn):
    """fn run with PyTorch's float32 products allowed on TF32 tensor cores."""
    def run(d):
        flags = backend.torch.backends.cuda.matmul
        before, flags.allow_tf32 = flags.allow_tf32, True
        try:
            return fn(d)
        finally:
            flags.allow_tf32 = before
    return run


def gemm_case(backend, m, n, k, trans_a=False, trans_b=False, impl="numba", dtype=F32,
              streamed=False):
    """streamed: a product with a short side (a matrix-vector product), memory bound: its
    roofline is a copy of the bytes of A, B and C, not the GEMM's rate."""
    xp = backend.xp
    dtype = np.dtype(dtype)

    def make(rng, be):
        a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
        d = {"a": be.array(a), "b": be.array(b)}
        if be.torch is not None:
            d["ta"], d["tb"] = be.tensor(d["a"]), be.tensor(d["b"])
        return d

    def op_a(x):
        return x.T if trans_a else x

    def op_b(x):
        return x.T if trans_b else x

    def check(d, out, be):
        a = be.host(d["a"])
        a_rows = op_a(a)[:SAMPLE_ROWS] if be.name == "cuda" else op_a(a)
        return rel_error(head(out, be, rows=True),
                         a_rows.astype(np.float64) @ op_b(be.host(d["b"])).astype(np.float64))

    def torch_mm(d):
        return backend.torch.mm(op_a(d["ta"]), op_b(d["tb"]))

    baselines = {}
    if impl == "cuda-tf32":
        # Tensor cores against tensor cores: an SGEMM anchor would compare TF32 with FP32.
        baselines = _torch_baseline(backend, _with_tf32(backend, torch_mm))
        baselines = {f"{name} TF32": fn for name, fn in baselines.items()}
    if not baselines:  # no PyTorch on this device (the emulator): the SGEMM anchors
        blas = "OpenBLAS" if backend.name == "cpu" else "cuBLAS"
        baselines = {blas: lambda d: xp.matmul(op_a(d["a"]), op_b(d["b"]))}
        baselines.update(_torch_baseline(backend, torch_mm))
        forced = forced_openblas_of(backend)
        if forced is not None:  # OpenBLAS picked narrower vectors than ours use
            baselines[f"OpenBLAS {forced.coretype}"] = forced.gemm(m, n, k, trans_a, trans_b,
                                                                   dtype.name)
    name = f"{'matvec' if streamed else 'matmul'} {'A^T' if trans_a else 'A'}@" \
        f"{'B^T' if trans_b else 'B'}"
    if dtype != F32:
        name += f" {dtype.name}"
    # TF32 keeps 10 bits of each input's mantissa: 1e-3 of the product's norm, as the tests
    tol = (1e-3 if impl == "cuda-tf32" else 0.0) + \
        (1e-6 if backend.name == "cpu" else 2e-6) * np.sqrt(k) * (1e-8 if dtype == F64 else 1)
    return Case("matmul", name, f"{m}x{n}x{k}", make,
                lambda d: K.matmul(d["a"], d["b"], trans_a, trans_b, impl=impl), baselines,
                check, tol, flops=None if streamed else (lambda d: 2 * m * n * k),
                bytes_moved=(lambda d: (m * k + k * n + m * n) * dtype.itemsize)
                if streamed else None, impl=impl, anchor="fastest",
                shape_class=(K.gemm_shape_class("matmul", dtype, m, n, k, trans_a, trans_b),),
                extra=dict(m=m, n=n, k=k, trans_a=trans_a, trans_b=trans_b, dtype=dtype.name))


def linear_case(backend, batch, fan_in, fan_out, impl="numba", group="large",
                just_written=False):
    """just_written: x and w are rewritten by the calling thread before each call, as in a
    training step, where the layer before wrote x and the optimizer w (a hot loop over
    the same inputs keeps them in every core's cache, which flatters two threads)."""
    xp = backend.xp

    def make(rng, be):
        d = {"x": be.array(rng.standard_normal((batch, fan_in), dtype=F32)),
             "w": be.array(rng.standard_normal((fan_in, fan_out), dtype=F32)
                           / F32(np.sqrt(fan_in))),
             "b": be.array(rng.standard_normal(fan_out, dtype=F32))}
        if be.torch is not None:  # (sharing the arrays' memory on the CPU)
            d["tx"], d["tw"], d["tb"] = (be.tensor(d[k]) for k in "xwb")
        if just_written:  # what rewrite() writes back
            d["x0"], d["w0"] = d["x"].copy(), d["w"].copy()
        return d

    def rewrite(d):
        xp.copyto(d["x"], d["x0"])
        xp.copyto(d["w"], d["w0"])

    def check(d, out, be):
        x = head(d["x"], be, rows=True)
        return rel_error(head(out, be, rows=True),
                         R.linear(x, be.host(d["w"]), be.host(d["b"]), "relu")[0])
    baselines = {backend.array_library: lambda d: xp.maximum(d["x"] @ d["w"] + d["b"], 0)}
    torch = backend.torch
    baselines.update(_torch_baseline(
        backend, lambda d: torch.relu(torch.addmm(d["tb"], d["tx"], d["tw"]))))
    return Case("matmul", "linear relu fwd" + (", fresh" if just_written else ""),
                f"{batch}x{fan_in}->{fan_out}", make,
                lambda d: K.linear(d["x"], d["w"], d["b"], "relu", impl=impl), baselines,
                check, 2e-6 * np.sqrt(fan_in), flops=lambda d: 2 * batch * fan_in * fan_out,
                impl=impl, group=group, before_each=rewrite if just_written else None,
                shape_class=(K.gemm_shape_class("linear", F32, batch, fan_out, fan_in),))


def linear_backward_case(backend, batch, fan_in, fan_out, impl="numba"):
    def make(rng, be):
        x = rng.standard_normal((batch, fan_in), dtype=F32)
        w = rng.standard_normal((fan_in, fan_out), dtype=F32) / F32(np.sqrt(fan_in))
        return {"x": be.array(x), "w": be.array(w), "y": be.array(np.maximum(x @ w, 0)),
                "dy": be.array(rng.standard_normal((batch, fan_out), dtype=F32))}

    def by_hand(d):
        dz = d["dy"] * (d["y"] > 0)
        return dz @ d["w"].T, d["x"].T @ dz, dz.sum(axis=0)

    def check(d, out, be):
        ref = R.linear_backward(*(be.host(d[k]) for k in ("dy", "x", "w", "y")), "relu")
        return max(rel_error(be.host(o), r) for o, r in zip(out, ref))
    return Case("matmul", "linear relu bwd", f"{batch}x{fan_in}->{fan_out}", make,
                lambda d: K.linear_backward(d["dy"], d["x"], d["w"], d["y"], "relu", impl=impl),
                {backend.array_library: by_hand}, check, 2e-6 * np.sqrt(batch),
                flops=lambda d: 4 * batch * fan_in * fan_out, impl=impl,
                shape_class=(K.linear_backward_shape_class(F32, batch, fan_in, fan_out),))


# ---------------------------------------------------------------- activations ------------

def _by_hand_activations(xp):
    """The activations and their gradients as a NumPy or CuPy user writes them."""
    a = F32(0.044715)

    def gelu_grad(x):
        t = xp.tanh(GELU_C * (x + a * x ** 3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + F32(3) * a * x * x)
    forward = {"relu": lambda x: xp.maximum(x, 0),
               "sigmoid": lambda x: 1 / (1 + xp.exp(-x)),
               "tanh": xp.tanh,
               "leaky_relu": lambda x: xp.where(x > 0, x, F32(0.01) * x),
               "gelu": lambda x: 0.5 * x * (1 + xp.tanh(GELU_C * (x + a * x ** 3)))}
    backward = {"relu": lambda dy, y: dy * (y > 0),
                "sigmoid": lambda dy, y: dy * y * (1 - y),
                "tanh": lambda dy, y: dy * (1 - y * y),
                "leaky_relu": lambda dy, y: dy * xp.where(y > 0, F32(1), F32(0.01)),
                "gelu": lambda dy, x: dy * gelu_grad(x)}
    return forward, backward


def _torch_activation(torch, name):
    f = torch.nn.functional
    return {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
            "leaky_relu": f.leaky_relu,
            "gelu": lambda x: f.gelu(x, approximate="tanh")}[name]


def activation_cases(backend, name, shape, group="large"):
    forward, backward = _by_hand_activations(backend.xp)

    def make(rng, be):
        x = be.array(rng.standard_normal(shape, dtype=F32) * 3)
        d = {"x": x, "dy": be.array(rng.standard_normal(shape, dtype=F32)),
             "saved": x if name == "gelu" else K.activation(x, name)}
        if be.torch is not None:
            d["tx"] = be.tensor(x)
        return d

    def check_forward(d, out, be):
        return rel_error(head(out, be), R.activation(head(d["x"], be), name))

    def check_backward(d, out, be):
        return rel_error(head(out, be), R.activation_backward(head(d["dy"], be),
                                                              head(d["saved"], be), name))
    fwd_base = {backend.array_library: lambda d: forward[name](d["x"])}
    if backend.torch is not None:
        fn = _torch_activation(backend.torch, name)
        fwd_base["torch"] = lambda d: fn(d["tx"])
    label = _label(shape)
    cases = [Case("activations", f"{name} fwd", label, make, lambda d: K.activation(d["x"], name),
                  fwd_base, check_forward, 4e-6, bytes_moved=lambda d: 2 * d["x"].nbytes,
                  group=group)]
    if group == "large":
        cases.append(Case("activations", f"{name} bwd", label, make,
                          lambda d: K.activation_backward(d["dy"], d["saved"], name),
                          {backend.array_library: lambda d: backward[name](d["dy"], d["saved"])},
                          check_backward, 8e-6, bytes_moved=lambda d: 3 * d["x"].nbytes))
    return cases


# ---------------------------------------------------------------- losses -----------------

def softmax_cross_entropy_case(backend, rows, classes, group="large"):
    xp, torch = backend.xp, backend.torch

    def make(rng, be):
        d = {"z": be.array(rng.standard_normal((rows, classes), dtype=F32) * 4),
             "y": be.array(rng.integers(0, classes, rows))}
        if be.torch is not None:
            d["tz"], d["ty"] = be.tensor(d["z"]), be.tensor(d["y"])
        return d

    def by_hand(d):
        z, y = d["z"], d["y"]
        index = xp.arange(rows)
        shifted = z - z.max(axis=1, keepdims=True)
        log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        dlogits = xp.exp(log_probs)
        dlogits[index, y] -= 1
        return -log_probs[index, y], dlogits

    def with_torch(d):
        z = d["tz"].detach().requires_grad_()
        loss = torch.nn.functional.cross_entropy(z, d["ty"], reduction="sum")
        loss.backward()
        return loss, z.grad

    def check(d, out, be):
        ref = R.softmax_cross_entropy(head(d["z"], be, rows=True), head(d["y"], be, rows=True))
        return max(rel_error(head(out[0], be, rows=True), ref[0]),
                   rel_error(head(out[1], be, rows=True), ref[1]))
    baselines = {backend.array_library: by_hand}
    baselines.update(_torch_baseline(backend, with_torch))
    return Case("softmax_cross_entropy", "softmax cross-entropy fwd+bwd", f"{rows}x{classes}",
                make, lambda d: K.softmax_cross_entropy(d["z"], d["y"]), baselines, check,
                8e-6, bytes_moved=lambda d: 2 * d["z"].nbytes, group=group)


def _elementwise_loss_case(backend, name, ours, by_hand, reference, size):
    def make(rng, be):
        return {"p": be.array(rng.standard_normal(size, dtype=F32) * 3),
                "t": be.array(rng.random(size, dtype=F32))}

    def check(d, out, be):
        ref = reference(head(d["p"], be), head(d["t"], be))
        return max(rel_error(head(out[0], be), ref[0]), rel_error(head(out[1], be), ref[1]))
    return Case("losses", f"{name} fwd+bwd", str(size), make, lambda d: ours(d["p"], d["t"]),
                {backend.array_library: lambda d: by_hand(d["p"], d["t"])}, check, 8e-6,
                bytes_moved=lambda d: 4 * d["p"].nbytes)


def loss_cases(backend, size):
    xp = backend.xp

    def bce(z, t):
        loss = xp.maximum(z, 0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))
        return loss, 1 / (1 + xp.exp(-z)) - t

    def mse(p, t):
        diff = p - t
        return diff * diff, 2 * diff
    return [_elementwise_loss_case(backend, "binary cross-entropy",
                                   K.binary_cross_entropy_with_logits, bce,
                                   R.binary_cross_entropy_with_logits, size),
            _elementwise_loss_case(backend, "mse", K.mse, mse, R.mse, size)]


# ---------------------------------------------------------------- dropout ----------------

def dropout_cases(backend, shape, p=0.2, group="large"):
    xp, torch = backend.xp, backend.torch

    def make(rng, be):
        d = {"x": be.array(rng.standard_normal(shape, dtype=F32)), "rng": rng}
        if be.torch is not None:
            d["tx"] = be.tensor(d["x"])
        return d

    def random(d):
        if xp is np:
            return d["rng"].random(shape, dtype=F32)
        return xp.random.random(shape, dtype=F32)

    def by_hand_forward(d):  # a NumPy user draws a mask and keeps it for backward
        d["mask"] = random(d) >= p
        return d["x"] * d["mask"] / F32(1 - p)

    def by_hand_backward(d):
        return d["x"] * d.setdefault("mask", random(d) >= p) / F32(1 - p)

    def check(d, out, be):  # the mask of the first elements is the same in a shorter array
        return rel_error(head(out, be), R.dropout(head(d["x"], be), p, 1234, 0))
    label = _label(shape)
    fwd_base = {backend.array_library: by_hand_forward}
    fwd_base.update(_torch_baseline(backend,
                                    lambda d: torch.nn.functional.dropout(d["tx"], p)))
    cases = [Case("dropout", "dropout fwd", label, make, lambda d: K.dropout(d["x"], p, 1234),
                  fwd_base, check, 2e-7, bytes_moved=lambda d: 2 * d["x"].nbytes, group=group)]
    if group == "large":
        cases.append(Case("dropout", "dropout bwd", label, make,
                          lambda d: K.dropout_backward(d["x"], p, 1234),
                          {backend.array_library: by_hand_backward}, check, 2e-7,
                          bytes_moved=lambda d: 2 * d["x"].nbytes))
    return cases


# ---------------------------------------------------------------- bias grad --------------

def bias_grad_case(backend, rows, cols):
    def make(rng, be):
        return {"dy": be.array(rng.standard_normal((rows, cols), dtype=F32))}

    def check(d, out, be):
        return rel_error(be.host(out), R.bias_grad(be.host(d["dy"])))
    return Case("bias_grad", "bias grad", f"{rows}x{cols}", make, lambda d: K.bias_grad(d["dy"]),
                {backend.array_library: lambda d: d["dy"].sum(axis=0)}, check,
                2e-6 * np.sqrt(rows), bytes_moved=lambda d: d["dy"].nbytes)


# ---------------------------------------------------------------- optimizer steps --------

def adam_case(backend, shapes, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, group="large"):
    """One Adam step over parameters of `shapes` (a list of shapes: the foreach form)."""
    xp, torch = backend.xp, backend.torch
    single = len(shapes) == 1

    def make(rng, be):
        d = {k: [be.array(rng.standard_normal(s, dtype=F32)) for s in shapes] for k in "pg"}
        d["m"] = [xp.zeros(s, F32) for s in shapes]
        d["v"] = [xp.zeros(s, F32) for s in shapes]
        d["step"] = [0]
        if be.torch is not None:
            params = [torch.nn.Parameter(be.tensor(p.copy())) for p in d["p"]]
            for param, g in zip(params, d["g"]):
                param.grad = be.tensor(g)
            d["torch_opt"] = torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps)
        return d

    def ours(d):
        d["step"][0] += 1
        if single:
            K.adam_step(d["p"][0], d["g"][0], d["m"][0], d["v"][0], lr=lr, step=d["step"][0])
        else:
            K.adam_step(d["p"], d["g"], d["m"], d["v"], lr=lr, step=d["step"][0])
        return d["p"][0]

    def by_hand(d):
        d["step"][0] += 1
        t = d["step"][0]
        for i, g in enumerate(d["g"]):
            d["m"][i] = beta1 * d["m"][i] + (1 - beta1) * g
            d["v"][i] = beta2 * d["v"][i] + (1 - beta2) * g ** 2
            m_hat = d["m"][i] / (1 - beta1 ** t)
            v_hat = d["v"][i] / (1 - beta2 ** t)
            d["p"][i] = d["p"][i] - lr * m_hat / (xp.sqrt(v_hat) + eps)
        return d["p"][0]

    def check(d, out, be):
        fresh = make(np.random.default_rng(1), be)
        before = [np.array(be.host(p)) for p in fresh["p"]]  # copies: ours updates in place
        ours(fresh)
        worst = 0.0
        for p, b, g in zip(fresh["p"], before, fresh["g"]):
            ref = R.adam_step(b, be.host(g), np.zeros(b.shape), np.zeros(b.shape), lr, beta1,
                              beta2, eps)[0]
            worst = max(worst, rel_error(be.host(p), ref))
        return worst
    baselines = {backend.array_library: by_hand}
    baselines.update(_torch_baseline(backend, lambda d: d["torch_opt"].step()))
    size = sum(int(np.prod(s)) for s in shapes)
    label = _label(shapes[0]) if single else f"{len(shapes)} params, {size}"
    name = "adam step" if single else "adam step (foreach)"
    return Case("optim", name, label, make, ours, baselines, check, 1e-6,
                bytes_moved=lambda d: 7 * 4 * size, group=group)


# ---------------------------------------------------------------- the suites -------------

# The CPU's sizes; the GPU's are larger than its L2 (64M-element activations, 8192 x 32768
# logits) so its timings are DRAM-bound where the op is; TINY only checks that the harness
# runs (e.g. on the CPU emulator of CUDA): its timings mean nothing.
SIZES = {
    "cpu": dict(gemms=[(1024, 1024, 1024, False, False), (2048, 2048, 2048, False, False),
                       (256, 512, 784, False, False), (256, 784, 512, False, True),
                       (784, 512, 256, True, False), (4096, 1024, 1024, False, False),
                       (4096, 1024, 1024, False, True), (1024, 1024, 4096, True, False)],
                layer=(4096, 1024, 1024), activations=[(1024, 1024), (4096, 4096)],
                softmax=[(4096, 1000), (1024, 16384)], elements=1 << 24,
                dropout=[(4096, 1024), (4096, 4096)], bias=[(4096, 1024), (4096, 4096)],
                adam=[1 << 20, 1 << 24],
                gemms64=[(1024, 1024, 1024, False, False), (256, 512, 784, False, False),
                         (256, 784, 512, False, True), (784, 512, 256, True, False)],
                # a short side: a perceptron's forward (X w) and weight gradient (X^T dz)
                # on a batch of 4096 MNIST-sized inputs, one sample through a wide layer
                streamed=[(4096, 1, 784, False, False), (784, 1, 4096, True, False),
                          (1, 1024, 1024, False, False)]),
    "cuda": dict(gemms=[(4096, 4096, 4096, False, False), (4096, 4096, 1024, False, False),
                        (4096, 1024, 4096, False, True), (1024, 4096, 4096, True, False)],
                 layer=(4096, 1024, 4096), activations=[(1 << 26,)],
                 softmax=[(8192, 32768)], elements=1 << 26, dropout=[(1 << 26,)],
                 bias=[(4096, 4096)], adam=[1 << 24]),
    "tiny": dict(gemms=[(128, 128, 128, False, False), (192, 160, 64, False, True),
                        (64, 160, 192, True, False)],
                 layer=(192, 64, 160), activations=[(1 << 14,)], softmax=[(64, 2048)],
                 elements=1 << 14, dropout=[(1 << 14,)], bias=[(96, 80)], adam=[1 << 12],
                 gemms64=[(96, 80, 64, False, True)]),
}
# The per-call group: the sizes of the lecture's networks (the demo MLP: batch 64,
# 64-128-128-10), where Python's cost around a kernel is most of the time.
DEMO_PARAMS = [(64, 128), (128,), (128, 128), (128,), (128, 10), (10,)]


def large_cases(backend, quick=False, tiny=False):
    sizes = SIZES["tiny" if tiny else backend.name]
    impls = ("numba", "blas", "auto") if backend.name == "cpu" else \
        ("cuda-tiled", "cuda-regblock", "cublas", "auto")
    gemms = [g for g in sizes["gemms"] if not (quick and g[0] * g[1] * g[2] >= 2048 ** 3)]
    cases = [gemm_case(backend, *g, impl=impl) for g in gemms for impl in impls]
    if backend.name == "cuda":
        cases += [gemm_case(backend, *g, impl="cuda-tf32") for g in gemms]
    else:  # float64 (the CUDA kernels are float32 only): ours against the DGEMMs
        cases += [gemm_case(backend, *g, impl="numba", dtype=F64) for g in sizes["gemms64"]]
        cases += [gemm_case(backend, *g, impl="numba", streamed=True)
                  for g in sizes.get("streamed", ())]
    cases += [linear_case(backend, *sizes["layer"], impl=impl) for impl in impls]
    if backend.name == "cpu":
        cases += [linear_backward_case(backend, *sizes["layer"], impl=impl) for impl in impls]
    for name in K.ACTIVATIONS:
        for shape in sizes["activations"]:
            cases += activation_cases(backend, name, shape)
    cases += [softmax_cross_entropy_case(backend, *s) for s in sizes["softmax"]]
    cases += loss_cases(backend, sizes["elements"])
    for shape in sizes["dropout"]:
        cases += dropout_cases(backend, shape)
    cases += [bias_grad_case(backend, *s) for s in sizes["bias"]]
    cases += [adam_case(backend, [(n,)]) for n in sizes["adam"]]
    return cases


def small_cases(backend):
    """Per-call cost at the demo MLP's sizes: ours against PyTorch eager and NumPy."""
    cases = []
    for name in ("relu", "gelu"):
        cases += activation_cases(backend, name, (64, 128), group="small")
    cases.append(softmax_cross_entropy_case(backend, 64, 10, group="small"))
    cases.append(linear_case(backend, 64, 128, 128, impl="auto", group="small"))
    if backend.name == "cpu":
        cases.append(linear_case(backend, 64, 128, 128, impl="auto", group="small",
                                 just_written=True))
    cases += dropout_cases(backend, (64, 128), group="small")
    cases.append(adam_case(backend, [(128, 128)], group="small"))
    cases.append(adam_case(backend, DEMO_PARAMS, group="small"))
    return cases
