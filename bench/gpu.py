"""`python -m bench --device cuda`: every CUDA kernel against what a GPU user runs instead
(CuPy's cuBLAS and elementwise ops, PyTorch where it is installed with CUDA), in one run.

Each row is checked against the float64 reference first (on a sample of rows for the
largest ops: the whole output would not fit the host's patience), then timed with CUDA
events: one warm-up call, then the median of repeated calls. Inputs are larger than L2
(64M-element activations, 8192 x 32768 logits), so the timings are DRAM-bound where the
op is. Rooflines: bytes over the device-to-device copy bandwidth and FLOPs over cuBLAS's
SGEMM rate, both measured at the start of the run.
"""
import socket
import statistics
import time

import numpy as np

import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R

from .cases import Case, rel_error
from .runner import format_row, run_case, save

F32 = np.float32
SAMPLE_ROWS = 64


def _cp():
    import cupy
    return cupy


def _torch():
    """PyTorch with CUDA, or None."""
    try:
        import torch
        return torch if torch.cuda.is_available() else None
    except ImportError:
        return None


def gpu_time(fn, repeats=20):
    """Median seconds of fn() by CUDA events on the current stream, after a warm-up call."""
    cp = _cp()
    fn()
    times = []
    for _ in range(repeats):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop) / 1e3)
    return statistics.median(times)


def copy_bandwidth(elements=1 << 26):
    cp = _cp()
    src = cp.ones(elements, F32)  # 256 MiB by default: far larger than L2
    dst = cp.empty_like(src)
    return 2 * src.nbytes / gpu_time(lambda: cp.copyto(dst, src))


def sgemm_rate(n=4096):
    cp = _cp()
    a, b = cp.ones((n, n), F32), cp.ones((n, n), F32)
    return 2 * n ** 3 / gpu_time(lambda: cp.matmul(a, b))


def host(x):
    return _cp().asnumpy(x)


def _gpu_inputs(make):
    def gpu_make(rng):
        return {k: (_cp().asarray(v) if isinstance(v, np.ndarray) else v)
                for k, v in make(rng).items()}
    return gpu_make


# ---------------------------------------------------------------- cases ------------------

GEMM_IMPLS = ("cuda-tiled", "cuda-regblock", "cublas")
TC_TOLERANCE = {"cuda-tf32": 1e-3, "cuda-bf16": 8e-3}  # input rounding (tests/test_matmul.py)


def tensor_core_case(n, impl):
    """Our TF32 or bf16 rung against cuBLAS in the same precision, through PyTorch
    (TF32 allowed; bf16 operands converted before timing)."""
    torch = _torch()

    def make(rng):
        return {"a": rng.standard_normal((n, n), dtype=F32),
                "b": rng.standard_normal((n, n), dtype=F32)}

    def baseline(d):
        if "ta" not in d:
            dtype = torch.bfloat16 if impl == "cuda-bf16" else torch.float32
            d["ta"] = torch.as_tensor(d["a"], device="cuda").to(dtype)
            d["tb"] = torch.as_tensor(d["b"], device="cuda").to(dtype)
        torch.backends.cuda.matmul.allow_tf32 = impl == "cuda-tf32"
        try:
            return torch.matmul(d["ta"], d["tb"])
        finally:
            torch.backends.cuda.matmul.allow_tf32 = False

    def check(d, out):
        a = host(d["a"][:SAMPLE_ROWS]).astype(np.float64)
        return rel_error(host(out[:SAMPLE_ROWS]), a @ host(d["b"]).astype(np.float64))
    return Case(f"matmul A@B (vs cuBLAS {impl[5:]})", f"{n}x{n}x{n}", _gpu_inputs(make),
                lambda d: K.matmul(d["a"], d["b"], impl=impl), baseline, check,
                TC_TOLERANCE[impl], flops=lambda d: 2 * n ** 3, impl=impl)


def gemm_case(m, n, k, impl, trans_a=False, trans_b=False):
    def make(rng):
        return {"a": rng.standard_normal((k, m) if trans_a else (m, k), dtype=F32),
                "b": rng.standard_normal((n, k) if trans_b else (k, n), dtype=F32)}

    def check(d, out):  # the first SAMPLE_ROWS rows of C
        a = host(d["a"])
        a_rows = (a[:, :SAMPLE_ROWS].T if trans_a else a[:SAMPLE_ROWS]).astype(np.float64)
        b = host(d["b"]).astype(np.float64)
        return rel_error(host(out[:SAMPLE_ROWS]), a_rows @ (b.T if trans_b else b))
    cp = _cp()
    op = f"matmul {'A^T' if trans_a else 'A'}@{'B^T' if trans_b else 'B'}"  # + [impl]
    return Case(op, f"{m}x{n}x{k}", _gpu_inputs(make),
                lambda d: K.matmul(d["a"], d["b"], trans_a, trans_b, impl=impl),
                lambda d: cp.matmul(d["a"].T if trans_a else d["a"],
                                    d["b"].T if trans_b else d["b"]),
                check, 2e-6 * np.sqrt(k), flops=lambda d: 2 * m * n * k, impl=impl)


def linear_case(batch, fan_in, fan_out, impl):
    def make(rng):
        return {"x": rng.standard_normal((batch, fan_in), dtype=F32),
                "w": rng.standard_normal((fan_in, fan_out), dtype=F32) / F32(np.sqrt(fan_in)),
                "b": rng.standard_normal(fan_out, dtype=F32)}

    def check(d, out):
        x = host(d["x"])[:SAMPLE_ROWS]
        return rel_error(host(out[:SAMPLE_ROWS]), R.linear(x, host(d["w"]), host(d["b"]),
                                                           "relu")[0])
    cp = _cp()
    return Case("linear relu fwd", f"{batch}x{fan_in}->{fan_out}", _gpu_inputs(make),
                lambda d: K.linear(d["x"], d["w"], d["b"], "relu", impl=impl),
                lambda d: cp.maximum(d["x"] @ d["w"] + d["b"], 0), check,
                4e-6 * np.sqrt(fan_in), flops=lambda d: 2 * batch * fan_in * fan_out, impl=impl)


def _cupy_activations():
    cp = _cp()
    c, a = F32(np.sqrt(2 / np.pi)), F32(0.044715)
    fwd = {"relu": lambda x: cp.maximum(x, 0),
           "sigmoid": lambda x: 1 / (1 + cp.exp(-x)),
           "tanh": cp.tanh,
           "leaky_relu": lambda x: cp.where(x > 0, x, F32(0.01) * x),
           "gelu": lambda x: 0.5 * x * (1 + cp.tanh(c * (x + a * x ** 3)))}
    bwd = {"relu": lambda dy, y: dy * (y > 0),
           "sigmoid": lambda dy, y: dy * y * (1 - y),
           "tanh": lambda dy, y: dy * (1 - y * y),
           "leaky_relu": lambda dy, y: cp.where(y > 0, dy, F32(0.01) * dy),
           "gelu": lambda dy, x: dy * (0.5 * (1 + cp.tanh(c * (x + a * x ** 3)))
                                        + 0.5 * x * (1 - cp.tanh(c * (x + a * x ** 3)) ** 2)
                                        * c * (1 + 3 * a * x * x))}
    return fwd, bwd


def activation_cases(name, size):
    fwd_base, bwd_base = _cupy_activations()

    def make(rng):
        x = _cp().asarray(rng.standard_normal(size, dtype=F32) * 3)
        return {"x": x, "dy": _cp().asarray(rng.standard_normal(size, dtype=F32)),
                "saved": x if name == "gelu" else K.activation(x, name)}

    def check_fwd(d, out):
        x = host(d["x"][:1 << 20])
        return rel_error(host(out[:1 << 20]), R.activation(x, name))

    def check_bwd(d, out):
        dy, saved = host(d["dy"][:1 << 20]), host(d["saved"][:1 << 20])
        return rel_error(host(out[:1 << 20]), R.activation_backward(dy, saved, name))
    return [Case(f"{name} fwd", str(size), make, lambda d: K.activation(d["x"], name),
                 lambda d: fwd_base[name](d["x"]), check_fwd, 4e-6,
                 bytes_moved=lambda d: 2 * d["x"].nbytes),
            Case(f"{name} bwd", str(size), make,
                 lambda d: K.activation_backward(d["dy"], d["saved"], name),
                 lambda d: bwd_base[name](d["dy"], d["saved"]), check_bwd, 8e-6,
                 bytes_moved=lambda d: 3 * d["x"].nbytes)]


def dropout_case(size, p=0.1):
    cp, torch = _cp(), _torch()

    def make(rng):
        return {"x": cp.asarray(rng.standard_normal(size, dtype=F32))}

    def baseline(d):
        if torch is not None:
            return torch.nn.functional.dropout(torch.as_tensor(d["x"], device="cuda"), p)
        return d["x"] * (cp.random.random(size, dtype=F32) >= p) / F32(1 - p)

    def check(d, out):
        return rel_error(host(out[:1 << 20]), R.dropout(host(d["x"][:1 << 20]), p, 7, 0))
    who = "torch" if torch is not None else "cupy"
    return Case(f"dropout fwd (vs {who})", str(size), make, lambda d: K.dropout(d["x"], p, 7),
                baseline, check, 2e-7, bytes_moved=lambda d: 2 * d["x"].nbytes)


def softmax_case(rows, classes):
    cp, torch = _cp(), _torch()

    def make(rng):
        return {"z": cp.asarray(rng.standard_normal((rows, classes), dtype=F32) * 4),
                "y": cp.asarray(rng.integers(0, classes, rows))}

    def baseline(d):
        if torch is not None:
            z = torch.as_tensor(d["z"], device="cuda").detach().requires_grad_()
            loss = torch.nn.functional.cross_entropy(z, torch.as_tensor(d["y"], device="cuda"),
                                                     reduction="sum")
            loss.backward()
            return loss, z.grad
        z = d["z"]
        shifted = z - z.max(axis=1, keepdims=True)
        logp = shifted - cp.log(cp.exp(shifted).sum(axis=1, keepdims=True))
        rows_ = cp.arange(rows)
        grad = cp.exp(logp)
        grad[rows_, d["y"]] -= 1
        return -logp[rows_, d["y"]], grad

    def check(d, out):
        z, y = host(d["z"][:SAMPLE_ROWS]), host(d["y"][:SAMPLE_ROWS])
        ref = R.softmax_cross_entropy(z, y)
        return max(rel_error(host(out[0][:SAMPLE_ROWS]), ref[0]),
                   rel_error(host(out[1][:SAMPLE_ROWS]), ref[1]))
    who = "torch" if torch is not None else "cupy"
    return Case(f"softmax xent fwd+bwd (vs {who})", f"{rows}x{classes}", make,
                lambda d: K.softmax_cross_entropy(d["z"], d["y"]), baseline, check, 8e-6,
                bytes_moved=lambda d: 2 * d["z"].nbytes)


def bias_grad_case(rows, cols):
    cp = _cp()

    def make(rng):
        return {"dy": cp.asarray(rng.standard_normal((rows, cols), dtype=F32))}
    return Case("bias grad", f"{rows}x{cols}", make, lambda d: K.bias_grad(d["dy"]),
                lambda d: d["dy"].sum(axis=0),
                lambda d, out: rel_error(host(out), R.bias_grad(host(d["dy"]))),
                2e-6 * np.sqrt(rows), bytes_moved=lambda d: d["dy"].nbytes)


def adam_case(size, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    cp = _cp()

    def make(rng):
        return {k: cp.asarray(rng.standard_normal(size, dtype=F32)) for k in "pg"} | \
            {"m": cp.zeros(size, F32), "v": cp.zeros(size, F32)}

    def ours(d):
        K.adam_step(d["p"], d["g"], d["m"], d["v"], lr=lr, step=1)
        return d["p"]

    def textbook(d):  # CuPy elementwise, as a user writes it (step 1)
        d["m"] = beta1 * d["m"] + (1 - beta1) * d["g"]
        d["v"] = beta2 * d["v"] + (1 - beta2) * d["g"] ** 2
        d["p"] = d["p"] - lr * (d["m"] / (1 - beta1)) / (cp.sqrt(d["v"] / (1 - beta2)) + eps)
        return d["p"]

    def check(d, out):
        fresh = make(np.random.default_rng(1))
        before = host(fresh["p"])
        K.adam_step(fresh["p"], fresh["g"], fresh["m"], fresh["v"], lr=lr, step=1)
        ref = R.adam_step(before, host(fresh["g"]), np.zeros(size), np.zeros(size), lr, beta1,
                          beta2, eps)[0]
        return rel_error(host(fresh["p"]), ref)
    return Case("adam step (vs cupy)", str(size), make, ours, textbook, check, 1e-6,
                bytes_moved=lambda d: 7 * d["p"].nbytes)


# The sizes, and TINY ones (--tiny) that only check the harness runs end to end,
# e.g. on the CPU emulator (kernels/cuda/emulator): their timings mean nothing.
# step: the MLP training step's batch and layer widths (gpu_step.py).
FULL = dict(gemm=4096, quick_gemm=2048, layer=(4096, 1024, 4096), elements=1 << 26,
            softmax=(8192, 32768), bias=(4096, 4096), adam=1 << 24,
            step=(4096, (1024, 4096, 4096, 1000)))
TINY = dict(gemm=128, quick_gemm=128, layer=(192, 64, 160), elements=1 << 14,
            softmax=(64, 2048), bias=(96, 80), adam=1 << 12, step=(64, (32, 64, 64, 10)))


def all_cases(quick=False, tiny=False):
    sizes = TINY if tiny else FULL
    n = sizes["quick_gemm" if quick else "gemm"]
    cases = [gemm_case(n, n, n, impl) for impl in GEMM_IMPLS]
    if _torch() is not None:  # cuBLAS in TF32 and bf16 is reached through PyTorch
        cases += [tensor_core_case(n, impl) for impl in TC_TOLERANCE]
    # an MLP layer's forward GEMM and its backward's two transposed GEMMs
    batch, fan_in, fan_out = sizes["layer"]
    for impl in GEMM_IMPLS[1:]:
        cases += [gemm_case(batch, fan_out, fan_in, impl),
                  gemm_case(batch, fan_in, fan_out, impl, trans_b=True),
                  gemm_case(fan_in, fan_out, batch, impl, trans_a=True)]
        cases.append(linear_case(batch, fan_in, fan_out, impl))
    size = sizes["elements"]  # full: 64M elements, 256 MiB, far larger than L2
    for name in K.ACTIVATIONS:
        cases += activation_cases(name, size)
    cases += [dropout_case(size), softmax_case(*sizes["softmax"]), bias_grad_case(*sizes["bias"]),
              adam_case(sizes["adam"])]
    return cases


# ---------------------------------------------------------------- running ----------------

def run(cases, out_name=None, steps=True, tiny=False):
    cp = _cp()
    from . import gpu_step
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    device = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    torch = _torch()
    print(f"kernelgrad CUDA benchmark on {device}, CuPy {cp.__version__}"
          + (f", PyTorch {torch.__version__}" if torch is not None else ", no PyTorch"))
    sizes = TINY if tiny else FULL
    bandwidth, flop_rate = copy_bandwidth(sizes["elements"]), sgemm_rate(sizes["gemm"])
    print(f"measured: copy bandwidth {bandwidth / 1e9:.0f} GB/s, cuBLAS SGEMM "
          f"{flop_rate / 1e12:.1f} TFLOP/s ({sizes['gemm']}^3)")
    print(f"{'op [impl]':<34} {'shape':<18} {'ours ms':>9} {'base ms':>10} {'ratio':>8} "
          f"{'roofline':>9}")
    rng = np.random.default_rng(0)
    rows = []
    for case in cases:
        row = run_case(case, rng, bandwidth, flop_rate, timer=gpu_time,
                       flop_basis="cuBLAS SGEMM rate")
        rows.append(row)
        print(format_row(row), flush=True)
        cp.get_default_memory_pool().free_all_blocks()
    step_rows = gpu_step.run(flop_rate, *sizes["step"]) if steps else []
    report = {"device": device, "host": socket.gethostname(), "cupy": cp.__version__,
              "torch": getattr(torch, "__version__", None), "copy_bandwidth_Bps": bandwidth,
              "sgemm_flops": flop_rate, "rows": rows, "training_steps": step_rows,
              "command": "python -m bench --device cuda" + (" --tiny" if tiny else ""),
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    save(dict(report, title=f"kernelgrad CUDA kernels — {device}", baseline="CuPy/PyTorch"),
         out_name or "cuda-" + device.replace(" ", "-"))
    ok = all(r["status"] == "ok" for r in rows) and all(r.get("status", "ok") == "ok"
                                                          for r in step_rows)
    return 0 if ok else 1
