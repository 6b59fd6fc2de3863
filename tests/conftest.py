"""Shared test helpers: fresh random inputs, NaN-filled outputs, the devices an op test
runs on, tolerance checks.

An op's tests take a `device` ("cpu"; "cuda" marked `gpu`, skipped where no GPU is) and
move their inputs with on_device(). `pytest -m gpu` runs the CUDA ones alone: on a GPU, or
with KERNELGRAD_CUDA_EMULATOR=1 on the CPU emulator of CUDA (tests/cuda_emulator).
"""
import os
import secrets
import tempfile

import numpy as np
import pytest

# KERNELGRAD_CUDA_EMULATOR=1: the GPU tests run the CUDA kernels in the CPU emulator
# (tests/cuda_emulator), through a stand-in for CuPy installed before anything imports it.
EMULATED = os.environ.get("KERNELGRAD_CUDA_EMULATOR") == "1"
if EMULATED:
    from cuda_emulator import cupy_shim
    cupy_shim.install()

from kernelgrad import devices  # noqa: E402
from kernelgrad.kernels import _alloc  # noqa: E402
from kernelgrad.kernels import reference as R  # noqa: E402

CUDA = devices.cuda_available()
if CUDA:
    import cupy as cp

    from kernelgrad.kernels.cuda import _module as cuda_module

GPU = [pytest.mark.gpu, pytest.mark.skipif(not CUDA, reason="needs an NVIDIA GPU with CuPy")]
DEVICES = ["cpu", pytest.param("cuda", marks=GPU)]


def gpu_test(test):
    """Marks a test that runs the CUDA kernels alone."""
    for mark in GPU:
        test = mark(test)
    return test


# the CPU kernels take float32 and float64, the CUDA ones float32
DEVICE_DTYPES = [("cpu", np.float32), ("cpu", np.float64),
                 pytest.param("cuda", np.float32, marks=GPU)]
# KERNELGRAD_GPU_TESTS=small drops the GPU tests' large sizes (for compute-sanitizer, which
# slows every launch a hundredfold); the small ones still reach every kernel's edges.
SMALL = os.environ.get("KERNELGRAD_GPU_TESTS") == "small"


def gpu_sizes(*values, large=()):
    """A GPU test's sizes: `values`, and `large` unless KERNELGRAD_GPU_TESTS=small."""
    return list(values) + ([] if SMALL else list(large))


def on_device(x, device, misalign=False):
    """x on `device`; with misalign (CUDA), a contiguous view whose data is not 16-byte
    aligned, which sends the kernels down their scalar (non-128-bit) paths."""
    if device == "cpu":
        return x
    if not misalign:
        return cp.asarray(x)
    flat = cp.empty(x.size + 1, x.dtype)
    view = flat[1:].reshape(x.shape)
    view[...] = cp.asarray(x)
    assert view.data.ptr % 16 and view.flags.c_contiguous
    return view


def to_host(x):
    return devices.to_numpy(x)

# Ops with several implementations run ours unless a test asks otherwise (impl= or
# test_autotune), so the suite checks our kernels, not which one a timing picked; and
# no test writes to the user's cache directory.
os.environ["KERNELGRAD_IMPL"] = "numba"
os.environ["KERNELGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="kernelgrad-test-cache-")

# Sizes that are not multiples of any tile or vector width.
AWKWARD = (1, 7, 33, 127, 1000)
DTYPES = (np.float32, np.float64)
# Relative tolerance for elementwise ops per dtype (float32: near 1e-6).
ELEMENTWISE_RTOL = {np.float32: 2e-6, np.float64: 1e-13}

# Optimizer steps for the foreach (list) tests: (name, hyper-parameters, positional state,
# keyword state); rmsprop takes no step count.
OPTIMIZER_CASES = [
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), ["momentum_buf"], []),
    ("sgd", dict(lr=0.1), [], []),
    ("adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01), ["state_sum"], []),
    ("rmsprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01), ["square_avg"],
     ["grad_avg", "momentum_buf"]),
    ("rmsprop", dict(lr=0.01, momentum=0.9), ["square_avg"], ["momentum_buf"]),
    ("adam", dict(lr=0.01, weight_decay=0.01), ["exp_avg", "exp_avg_sq"], []),
    ("adam", dict(lr=0.01, weight_decay=0.01, decoupled_weight_decay=True),
     ["exp_avg", "exp_avg_sq"], []),
]


@pytest.fixture
def rng():
    """A generator with a fresh seed per test; a failing test prints the seed, and
    KERNELGRAD_TEST_SEED=that seed replays it."""
    seed = int(os.environ.get("KERNELGRAD_TEST_SEED") or secrets.randbits(63))
    print(f"rng seed: {seed}")
    return np.random.default_rng(seed)


@pytest.fixture(autouse=True)
def nan_outputs(monkeypatch):
    """Every kernel output starts as NaN, so an element the kernel never writes fails."""
    def nan_empty(shape, dtype):
        return np.full(shape, np.nan, dtype=dtype)
    monkeypatch.setattr(_alloc, "empty", nan_empty)
    monkeypatch.setattr(_alloc, "empty_small", nan_empty)
    monkeypatch.setattr(_alloc, "empty_like", lambda a: nan_empty(a.shape, a.dtype))
    if CUDA:
        monkeypatch.setattr(cuda_module, "empty", lambda shape: cp.full(shape, cp.nan,
                                                                       cp.float32))


def activation_tolerances(x, dy, name, alpha):
    """assert_close's `scale` and `atol` for an activation's forward and backward results.

    A kernel rounding its intermediates in float is exact for an input perturbed by a relative
    rounding error, so it may be off by rtol |x f'(x)| forward and rtol |dy x g''(x)| backward
    (g = f'). Both are large where the function is ill-conditioned: gelu's tail, whose exp(2u)
    turns u's rounding into a relative error of 2|u| eps (|u| ~ 40 at x = -10). Subnormal
    intermediates flush to zero, and gelu multiplies one by |x| forward and by 2 |x u'|
    (< 4096 for |x| < 25) backward.
    """
    x = np.asarray(x, np.float64)
    tiny = np.finfo(np.asarray(dy).dtype).tiny
    y = R.activation(x, name, alpha)
    saved = x if name == "gelu" else y
    forward = dict(scale=np.abs(x * R.activation_backward(np.ones_like(x), saved, name, alpha)),
                   atol=64 * tiny)
    if name != "gelu":  # the others' derivatives are polynomials in the saved output
        return forward, dict(atol=64 * tiny)
    h = 1e-6
    slope_up = R.activation_backward(np.ones_like(x), x * (1 + h), name, alpha)
    slope_down = R.activation_backward(np.ones_like(x), x * (1 - h), name, alpha)
    curvature = np.abs(np.asarray(dy, np.float64) * (slope_up - slope_down) / (2 * h))
    return forward, dict(scale=curvature, atol=4096 * tiny)


def bce_scales(logits, targets):
    """The sizes of the terms binary cross-entropy sums, for assert_close's `scale`: loss =
    max(z, 0) - z t + log1p(exp(-|z|)) and grad = sigmoid(z) - t both cancel (a grad of
    0.01 from 0.88 - 0.87 keeps sigmoid's rounding of 0.88: 1% of draws failed a plain
    relative check)."""
    z, t = logits.astype(np.float64), targets.astype(np.float64)
    loss_terms = np.maximum(z, 0.0) + np.abs(z * t) + np.log1p(np.exp(-np.abs(z)))
    grad_terms = R.activation(z, "sigmoid") + np.abs(t)
    return loss_terms, grad_terms


def softmax_inputs(rng, rows, classes, dtype, spread=3.0, masked=0.0):
    """Logits and labels; with `masked`, that fraction of the logits is -inf, as masks make
    them (never a row's label's), so that some GPU threads see only masked values."""
    logits = (rng.standard_normal((rows, classes)) * spread).astype(dtype)
    labels = rng.integers(0, classes, rows)
    if masked:
        mask = rng.random((rows, classes)) < masked
        mask[np.arange(rows), labels] = False
        logits[mask] = -np.inf
    return logits, labels


def assert_softmax_close(losses, dlogits, logits, labels, rtol):
    """softmax_cross_entropy's output against the reference. A loss near 0 is log(s) for a
    sum s near 1, and dlogits at the label is p - 1 for p near 1: both are exact only to
    the rounding of s and p, whose size is 1 (atol: exp flushes to 0 near the bottom of
    the normal range)."""
    ref_losses, ref_dlogits = R.softmax_cross_entropy(logits, labels)
    onehot = np.zeros_like(ref_dlogits)
    onehot[np.arange(len(labels)), labels] = 1.0
    assert_close(losses, ref_losses, rtol, scale=1.0, what="losses")
    assert_close(dlogits, ref_dlogits, rtol, scale=np.abs(ref_dlogits + onehot) + onehot,
                 atol=16 * np.finfo(logits.dtype).tiny, what="dlogits")


def nan_logit_inputs(classes, dtype):
    """Two rows of logits and their labels: row 0 holds one NaN, so its loss and every one
    of its dlogits must be NaN, whichever GPU thread reads the NaN; row 1 is finite."""
    logits = np.zeros((2, classes), dtype)
    logits[:, -1] = 1.0
    logits[0, 1] = np.nan
    return logits, np.array([0, classes - 1])


def assert_nan_row_only(losses, dlogits):
    assert np.isnan(losses[0]) and np.isnan(dlogits[0]).all()
    assert np.isfinite(losses[1]) and np.isfinite(dlogits[1]).all()


def linear_tolerances(x, w, b, activation, alpha, y, z, dy):
    """assert_close's keyword arguments for linear's z, y and (dx, dw, db), given the kernel's
    y and z (the backward's saved values, as the reference gets them too).

    Each scale bounds the terms summed to give a result: |x| @ |w| + |b| for z, so a z that
    cancels (x w + b ~ 0) is only as exact as its terms; z's error times |f'| (at the
    kernel's z or the exact one) plus the activation's own rounding for y; and dz = dy f'(z)
    with its rounding for the GEMMs and column sums of the backward.
    """
    f64 = np.float64
    ax, aw = np.abs(np.asarray(x, f64)), np.abs(np.asarray(w, f64))
    z = np.asarray(z, f64)
    saved = z if activation == "gelu" else np.asarray(y, f64)
    fwd_tol, bwd_tol = activation_tolerances(z, dy, activation, alpha)
    z_scale = ax @ aw + (0.0 if b is None else np.abs(np.asarray(b, f64)))

    def slope_at(pre):  # |f'| at a pre-activation
        at = pre if activation == "gelu" else R.activation(pre, activation, alpha)
        return np.abs(R.activation_backward(np.ones_like(pre), at, activation, alpha))
    # the kernel's z and the exact one may straddle a kink (relu at 0): either slope
    slope = np.maximum(slope_at(z), slope_at(R.linear(x, w, b)[1]))
    dz_scale = (np.abs(R.activation_backward(dy, saved, activation, alpha))
                + bwd_tol.get("scale", 0.0))
    atol = bwd_tol["atol"]
    return (dict(scale=z_scale), dict(scale=slope * z_scale + fwd_tol["scale"],
                                      atol=fwd_tol["atol"]),
            (dict(scale=dz_scale @ aw.T, atol=atol * aw.shape[1]),
             dict(scale=ax.T @ dz_scale, atol=atol * ax.shape[0]),
             dict(scale=dz_scale.sum(axis=0), atol=atol * ax.shape[0])))


def assert_close(out, ref, rtol, scale=None, what="", atol=np.finfo(np.float64).tiny):
    """‖out − ref‖ <= rtol ‖|ref| + scale‖ and, elementwise, |out − ref| <= rtol (|ref| + scale).

    `scale` bounds the size of the terms that were summed or subtracted to give each result
    (|A| @ |B| for a GEMM; p and 1 for softmax − onehot): a result that cancels is only as
    exact as those terms. Without it the norm check is the plain ‖out − ref‖/‖ref‖ <= rtol
    and the elementwise scale is |ref|'s mean. `atol` admits underflow to zero (pass the
    dtype's smallest normal for results that may be that small). NaN never passes.
    """
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert out.shape == ref.shape, f"{what}: shape {out.shape} != {ref.shape}"
    assert np.all(np.isfinite(out) | ~np.isfinite(ref)), f"{what}: non-finite output"
    assert not np.any(np.isnan(out) & ~np.isnan(ref)), f"{what}: NaN output"
    finite = np.isfinite(ref)
    if not finite.all():
        assert np.array_equal(out[~finite], ref[~finite], equal_nan=True), what
    out, ref = out[finite], ref[finite]
    if ref.size == 0:
        return
    if scale is None:
        norm_ref = np.linalg.norm(ref)
        scale = np.mean(np.abs(ref))
    else:
        scale = np.asarray(scale, dtype=np.float64)[finite] if np.ndim(scale) else scale
        norm_ref = np.linalg.norm(np.abs(ref) + scale)
    norm_err = np.linalg.norm(out - ref)
    assert norm_err <= rtol * norm_ref + atol * np.sqrt(ref.size), \
        f"{what}: relative norm error {norm_err / max(norm_ref, atol):.3g} > {rtol:.3g}"
    err = np.abs(out - ref)
    bound = rtol * (np.abs(ref) + scale) + atol
    worst = np.argmax(err / bound)
    assert np.all(err <= bound), \
        f"{what}: elementwise error {err.flat[worst]:.3g} at {worst} (ref {ref.flat[worst]:.6g})"


def gradcheck(f, *inputs, eps=1e-6, rtol=1e-6, seed=0):
    """Compare the autograd gradients of sum(f(*inputs) * r), r random, with central
    differences, for every float64 Tensor input that requires grad.

    The library seed is reset before every evaluation, so dropout draws the same mask.
    """
    import kernelgrad as kg
    rng = np.random.default_rng(seed)

    def evaluate():
        kg.manual_seed(1234)
        return f(*inputs)

    out = evaluate()
    r = rng.standard_normal(out.shape)
    for x in inputs:
        x.grad = None
    (out * r).sum().backward()
    for i, x in enumerate(inputs):
        if not (isinstance(x, kg.Tensor) and x.requires_grad):
            continue
        assert x.dtype == np.float64, "gradcheck runs in float64"
        analytic = np.zeros_like(x.data) if x.grad is None else x.grad  # None: unused input
        numeric = np.zeros_like(x.data)
        flat, flat_numeric = x.data.reshape(-1), numeric.reshape(-1)
        with kg.no_grad():
            for j in range(flat.size):
                saved = flat[j]
                flat[j] = saved + eps
                plus = np.sum(evaluate().data * r)
                flat[j] = saved - eps
                minus = np.sum(evaluate().data * r)
                flat[j] = saved
                flat_numeric[j] = (plus - minus) / (2 * eps)
        # central differences are exact to O(eps^2) plus rounding of size |f| eps_64 / eps
        rounding = 4 * np.finfo(np.float64).eps * np.abs(out.data * r).sum() / eps
        np.testing.assert_allclose(analytic, numeric, rtol=rtol,
                                   atol=rtol * np.abs(numeric).max() + rounding,
                                   err_msg=f"gradient of input {i}")


# Zeros of both signs, infinities, NaN, subnormals, the largest floats and values where
# exp over- or underflows: the special values every kernel must handle as the CPU does.
SPECIALS = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 3e38,
                     -3e38, 100.0, -100.0, 20.0, -20.0], np.float32)


def assert_as_on_the_cpu(got, want, what, atol=16 * np.finfo(np.float32).tiny):
    """NaN where the CPU has NaN, the same infinities, finite values to 1e-5 (the CPU
    flushes some subnormal results to 0: atol, which may be an array)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), \
        f"{what}: NaN differs at {np.argwhere(np.isnan(got) != nan)[:5].tolist()}"
    assert np.array_equal(got[np.isinf(want)], want[np.isinf(want)]), f"{what}: infinities"
    finite = np.isfinite(want)
    err = np.abs(got[finite] - want[finite])
    bound = 1e-5 * np.abs(want[finite]) + np.broadcast_to(atol, want.shape)[finite]
    assert np.all(err <= bound), f"{what}: {err.max():.3g} off"
