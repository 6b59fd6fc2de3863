"""One training step of an MLP: kernelgrad against PyTorch, plain NumPy and the GEMM floor.

A step is zero_grad, forward (Linear+ReLU, dropout after each hidden layer), softmax
cross-entropy, backward and an Adam update, on float32 data. The "GEMM floor" is the
step's GEMMs alone (eight for a three-layer MLP: three forward, five backward, as the
first layer needs no input gradient) through OpenBLAS, on the same shapes in the same
run: no implementation that calls a BLAS-speed GEMM for them can be faster. (Where
NumPy's OpenBLAS picked narrower vectors than our compile target's, the floor is the
faster of it and OpenBLAS forced to the wider kernel: forced_blas.py.) kernelgrad runs
twice: eagerly (the autograd graph per step) and captured (kg.capture: the step recorded
once, replayed).

    python -m bench.steps            # every model of MLPS; also run by `python -m bench`
"""
import sys

import numpy as np

import kernelgrad as kg
from kernelgrad import nn
from kernelgrad.cli import build_mlp

from .backend import cpu_time_all, paired_ratio
from .floor import gemm_floor
from .forced_blas import forced_openblas
from .report import floor_ratio

# (name, batch, layer widths, dropout). One linear layer: "softmax" is softmax regression
# and "logistic" logistic regression, the course's first models (a model with one output
# is trained as a binary classifier: sigmoid and binary cross-entropy, labels 0 or 1)
# Blocks per step function: the ratio to the GEMM floor is taken round by round
# (paired_ratio), so more, shorter rounds than the other rows' three
ROUNDS = 8

MLPS = [("wide MLP", 512, (784, 1024, 1024, 10), 0.2),
        ("demo MLP", 64, (64, 128, 128, 10), 0.2),
        ("softmax", 512, (784, 10), 0.0),
        ("logistic", 512, (784, 1), 0.0)]


def _binary(widths):
    return widths[-1] == 1


def _data(batch, widths):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, widths[0]), dtype=np.float32)
    if _binary(widths):
        return x, (rng.random((batch, 1)) < 0.5).astype(np.float32)
    return x, rng.integers(0, widths[-1], batch)


def _loss(module, widths):
    """The loss class of torch.nn or kernelgrad.nn for this model."""
    return module.BCEWithLogitsLoss() if _binary(widths) else module.CrossEntropyLoss()


def _training_step(model, loss_fn, opt, x, y):
    """The step as written for both PyTorch and kernelgrad (the same API)."""
    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return step


def kernelgrad_step(batch, widths, p):
    model = build_mlp(widths[0], widths[1:-1], widths[-1], "relu", p)
    x, y = _data(batch, widths)
    return _training_step(model, _loss(nn, widths), kg.optim.Adam(model.parameters()),
                          kg.tensor(x), kg.tensor(y))


def capture_mlp(batch, widths, p):
    """(the kg.capture step of the MLP, its batch x, its labels y)."""
    model = build_mlp(widths[0], widths[1:-1], widths[-1], "relu", p)
    x, y = _data(batch, widths)
    return kg.capture(model, _loss(nn, widths), kg.optim.Adam(model.parameters())), x, y


def captured_step(batch, widths, p):
    """The same step through kg.capture: recorded on its first call, replayed after."""
    step, x, y = capture_mlp(batch, widths, p)
    return lambda: step(x, y)


def torch_step(batch, widths, p):
    import torch
    torch.manual_seed(0)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if i < len(widths) - 2:
            layers += [torch.nn.ReLU(), torch.nn.Dropout(p)]
    model = torch.nn.Sequential(*layers)
    x, y = _data(batch, widths)
    return _training_step(model, _loss(torch.nn, widths),
                          torch.optim.Adam(model.parameters(), lr=1e-3),
                          torch.from_numpy(x), torch.from_numpy(y))


def numpy_step(batch, widths, p, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """The step as a NumPy user writes it: masks from rng.random, textbook Adam."""
    rng = np.random.default_rng(0)
    params = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        bound = np.sqrt(6 / fan_in)
        params += [rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32),
                   np.zeros(fan_out, np.float32)]
    moments = [(np.zeros_like(q), np.zeros_like(q)) for q in params]
    x, y = _data(batch, widths)
    binary = _binary(widths)
    t = [0]

    def step():
        hs, masks = [x], []
        h = x
        n_layers = len(params) // 2
        for i in range(n_layers):
            z = h @ params[2 * i] + params[2 * i + 1]
            if i < n_layers - 1:
                mask = (rng.random(z.shape, dtype=np.float32) >= p) / np.float32(1 - p)
                h = np.maximum(z, 0) * mask
                masks.append(mask)
                hs.append(h)
            else:
                h = z
        if binary:  # sigmoid and binary cross-entropy, the mean over the batch
            dz = (1 / (1 + np.exp(-h)) - y) / np.float32(batch)
        else:
            shifted = h - h.max(axis=1, keepdims=True)
            probs = np.exp(shifted)
            probs /= probs.sum(axis=1, keepdims=True)
            dz = probs
            dz[np.arange(batch), y] -= 1
            dz /= batch
        grads = [None] * len(params)
        for i in reversed(range(n_layers)):
            grads[2 * i] = hs[i].T @ dz
            grads[2 * i + 1] = dz.sum(axis=0)
            if i > 0:
                dh = dz @ params[2 * i].T
                dz = dh * masks[i - 1] * (hs[i] > 0)
        t[0] += 1
        for q, g, (m, v) in zip(params, grads, moments):
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            m_hat = m / (1 - beta1 ** t[0])
            v_hat = v / (1 - beta2 ** t[0])
            q -= lr * m_hat / (np.sqrt(v_hat) + eps)
    return step


def _ms(timing):
    return {"median_s": timing.median, "spread": timing.spread}


def run_all(mlps=None):
    """Time every MLP's step four ways; print and return one row per MLP."""
    print(header())
    results = []
    for name, batch, widths, p in MLPS if mlps is None else mlps:
        shape = f"batch {batch}, {'-'.join(map(str, widths))}"
        row = {"mlp": name, "shape": shape, "dropout": p}
        steps = {"kernelgrad": kernelgrad_step(batch, widths, p),
                 "captured": captured_step(batch, widths, p)}
        try:
            steps["pytorch"] = torch_step(batch, widths, p)
        except ImportError:
            pass
        steps["numpy"] = numpy_step(batch, widths, p)
        steps["gemm_floor"] = gemm_floor(batch, widths)
        forced = forced_openblas()
        if forced is not None:  # NumPy's OpenBLAS picked narrower vectors than ours
            steps["gemm_floor_forced"] = forced.floor(batch, widths)
        timings = cpu_time_all(steps, rounds=ROUNDS, budget_s=2)
        row["times"] = {k: _ms(t) for k, t in timings.items()}
        row["noisy"] = any(t.noisy for t in timings.values())
        floor = timings.pop("gemm_floor")
        if forced is not None:  # the floor: the faster OpenBLAS kernel's
            floor = min(floor, timings.pop("gemm_floor_forced"), key=lambda t: t.median)
            row["gemm_floor_kernel"] = forced.architecture
        for k, t in timings.items():
            row[f"{k}_s"] = t.median
        row["gemm_floor_s"] = floor.median
        # captured / floor, round by round
        row["captured_floor_ratio"] = paired_ratio(timings["captured"], floor)
        row.setdefault("pytorch_s", None)
        results.append(row)
        print(format_row(row), flush=True)
    return results


def header():
    return (f"{'training step':<10} {'shape':<26} {'eager ms':>9} {'capt. ms':>9} "
            f"{'torch ms':>9} {'numpy ms':>9} {'GEMMs ms':>9}  capt./GEMMs capt./torch "
            "capt./numpy eager/torch")


def format_row(r):
    ours, eager, torch_s = r["captured_s"], r["kernelgrad_s"], r["pytorch_s"]
    torch_ms = f"{torch_s * 1e3:9.2f}" if torch_s else f"{'-':>9}"
    vs_torch = f"{ours / torch_s:11.2f}x" if torch_s else f"{'-':>12}"
    eager_vs_torch = f"{eager / torch_s:11.2f}x" if torch_s else f"{'-':>12}"
    return (f"{r['mlp']:<10} {r['shape']:<26} {eager * 1e3:9.2f} {ours * 1e3:9.2f} {torch_ms} "
            f"{r['numpy_s'] * 1e3:9.2f} {r['gemm_floor_s'] * 1e3:9.2f}  "
            f"{floor_ratio(r):10.2f}x {vs_torch} {ours / r['numpy_s']:10.2f}x"
            f"{eager_vs_torch}" + ("  noisy" if r["noisy"] else ""))


if __name__ == "__main__":
    run_all()
    sys.exit(0)
