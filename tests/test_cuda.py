"""The CUDA kernels against the reference, on a GPU (marked `gpu`; skipped elsewhere).

Run on a GPU machine: `PYTHONPATH=. python3 -m pytest -m gpu tests`. Every output starts
NaN-filled (cuda/_module.empty is swapped), shapes are awkward, and misaligned views send
the kernels down their scalar (non-128-bit) paths. KERNELGRAD_GPU_TESTS=small drops the
large sizes (for the sanitizers, which slow every launch a hundredfold); the small ones
still reach every kernel's edges and both of its paths.
"""
import os

import numpy as np
import pytest

import kernelgrad.kernels as K
from kernelgrad import devices
from kernelgrad.kernels import philox
from kernelgrad.kernels import reference as R

from conftest import (AWKWARD, ELEMENTWISE_RTOL, OPTIMIZER_CASES, activation_tolerances,
                      assert_close, assert_nan_row_only, assert_softmax_close, bce_scales,
                      linear_tolerances, nan_logit_inputs, softmax_inputs)

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not devices.cuda_available(),
                                 reason="needs an NVIDIA GPU with CuPy")]

if devices.cuda_available():
    import cupy as cp
    from kernelgrad.kernels.cuda import _module

F32 = np.float32
RTOL = ELEMENTWISE_RTOL[F32]
SMALL = os.environ.get("KERNELGRAD_GPU_TESTS") == "small"
EMULATED = os.environ.get("KERNELGRAD_CUDA_EMULATOR") == "1"  # see kernels/cuda/emulator


def sizes(*values, large=()):
    return list(values) + ([] if SMALL else list(large))


@pytest.fixture(autouse=True)
def nan_cuda_outputs(monkeypatch):
    monkeypatch.setattr(_module, "empty", lambda shape: cp.full(shape, cp.nan, cp.float32))


def gpu(x, misalign=False):
    """x on the GPU; with misalign, a contiguous view whose data is not 16-byte aligned."""
    if not misalign:
        return cp.asarray(x)
    flat = cp.empty(x.size + 1, x.dtype)
    view = flat[1:].reshape(x.shape)
    view[...] = cp.asarray(x)
    assert view.data.ptr % 16 and view.flags.c_contiguous
    return view


def host(x):
    return cp.asnumpy(x)


SIZES = sizes(*[(n,) for n in AWKWARD], (33, 127), large=[(1 << 20,)])


@pytest.mark.parametrize("misalign", [False, True])
@pytest.mark.parametrize("name", K.ACTIVATIONS)
@pytest.mark.parametrize("shape", SIZES)
def test_activations(rng, name, shape, misalign):
    x = (rng.standard_normal(shape) * 4).astype(F32)
    y = K.activation(gpu(x, misalign), name, alpha=0.05)
    assert isinstance(y, cp.ndarray) and y.shape == shape
    dy = rng.standard_normal(shape).astype(F32)
    fwd_tol, bwd_tol = activation_tolerances(x, dy, name, 0.05)
    assert_close(host(y), R.activation(x, name, 0.05), RTOL * 2, **fwd_tol, what=f"{name} fwd")
    saved = x if name == "gelu" else host(y)
    dx = K.activation_backward(gpu(dy, misalign), gpu(saved), name, alpha=0.05)
    assert_close(host(dx), R.activation_backward(dy, saved, name, 0.05), RTOL * 4, **bwd_tol,
                 what=f"{name} bwd")


@pytest.mark.parametrize("rows", AWKWARD)
# a warp per row up to 1024 classes; then a block per row, the row in registers (4096:
# 128-bit loads, 1025 and 4099: scalar) up to 32768; past that read twice (32772, 40000)
@pytest.mark.parametrize("classes", sizes(*AWKWARD, 1024, 1025, 4096, 4099,
                                          large=[32768, 32772, 40000]))
def test_softmax_cross_entropy(rng, rows, classes):
    check_softmax_cross_entropy(rng, min(rows, (1 << 24) // classes), classes)


@pytest.mark.parametrize("classes", [7, 1000, 5000, 5001, 40000])
def test_softmax_cross_entropy_with_masked_logits(rng, classes):
    check_softmax_cross_entropy(rng, 33, classes, masked=0.95)


def check_softmax_cross_entropy(rng, rows, classes, masked=0.0):
    logits, labels = softmax_inputs(rng, rows, classes, F32, masked=masked)
    losses, dlogits = K.softmax_cross_entropy(gpu(logits), cp.asarray(labels))
    assert_softmax_close(host(losses), host(dlogits), logits, labels, 8e-6)
    K.check_device_errors()


@pytest.mark.parametrize("classes", [3, 5000, 5001, 40000])
def test_softmax_cross_entropy_nan_logit_makes_its_row_nan(classes):
    logits, labels = nan_logit_inputs(classes, F32)
    losses, dlogits = K.softmax_cross_entropy(gpu(logits), cp.asarray(labels))
    assert_nan_row_only(host(losses), host(dlogits))


def test_softmax_cross_entropy_is_stable_at_1e4():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [1e4, 1e4, -1e4]], F32)
    losses, dlogits = K.softmax_cross_entropy(gpu(logits), cp.asarray([1, 1, 0]))
    np.testing.assert_allclose(host(losses), [2e4, 0.0, np.log(2.0)], rtol=1e-6)
    np.testing.assert_allclose(host(dlogits), [[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]], atol=1e-7)


@pytest.mark.parametrize("classes", [10, 5000, 5001, 40000])
def test_out_of_range_label_is_nan_and_flagged(rng, classes):
    logits = gpu(rng.standard_normal((4, classes)).astype(F32))
    losses, dlogits = K.softmax_cross_entropy(logits, cp.asarray([0, classes, -1, 3]))
    out = host(losses)
    assert np.isnan(out[1]) and np.isnan(out[2]) and np.isfinite(out[[0, 3]]).all()
    assert np.isnan(host(dlogits)[1]).all()
    with pytest.raises(ValueError, match="label outside"):
        K.check_device_errors()
    K.check_device_errors()  # the flag was cleared


@pytest.mark.parametrize("shape", sizes((1,), (7,), (33, 127), large=[(1 << 20,)]))
def test_bce_and_mse(rng, shape):
    z = (rng.standard_normal(shape) * 5).astype(F32)
    t = rng.random(shape).astype(F32)
    # mse's z - t is exact to rounding (exact inputs); bce's terms cancel (bce_scales)
    for fn, ref, scales in ((K.binary_cross_entropy_with_logits,
                             R.binary_cross_entropy_with_logits, bce_scales(z, t)),
                            (K.mse, R.mse, (None, None))):
        got = fn(gpu(z), gpu(t))
        for g, r, scale in zip(got, ref(z, t), scales):
            assert_close(host(g), r, RTOL * 4, scale, what=fn.__name__)


@pytest.mark.parametrize("misalign", [False, True])
@pytest.mark.parametrize("shape", sizes((1,), (7,), (33, 127), (1000,), large=[(1 << 20,)]))
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5])
def test_dropout_mask_equals_the_cpu_one(rng, shape, p, misalign):
    x = rng.standard_normal(shape).astype(F32)
    seed, offset = int(rng.integers(0, 2 ** 63)), int(rng.integers(0, 2 ** 40))
    y = host(K.dropout(gpu(x, misalign), p, seed, offset))
    mask = philox.dropout_mask(shape, p, seed, offset)
    np.testing.assert_array_equal(y != 0, mask & (x != 0))
    np.testing.assert_array_equal(y, K.dropout(x, p, seed, offset))  # bit for bit
    dx = host(K.dropout_backward(gpu(x), p, seed, offset))
    np.testing.assert_array_equal(dx, y)


@pytest.mark.parametrize("shape", sizes((1, 1), (7, 33), (1000, 127), (33, 1100),
                                         large=[(4096, 1000), (33, 70000)]))
def test_bias_grad(rng, shape):
    dy = rng.standard_normal(shape).astype(F32)
    assert_close(host(K.bias_grad(gpu(dy))), R.bias_grad(dy), 1e-6 * np.sqrt(shape[0]),
                 scale=np.abs(dy).sum(0), what="bias grad")


OUR_GEMMS = ["cuda-tiled", "cuda-regblock", "cuda-tf32", "cuda-bf16"]
# (1200, 300, 9): a grid of 10 x 3 tiles of 128 (38 x 10 of 32), short in both directions
GEMM_SHAPES = ([(1, 1, 1), (7, 33, 7), (33, 127, 1000), (130, 129, 9), (127, 1, 33),
                (256, 384, 264), (1200, 300, 9)]
               if SMALL else
               [(m, n, k) for m in AWKWARD for n in (1, 33, 127) for k in (1, 7, 1000)]
               + [(256, 384, 264), (130, 129, 9), (4096, 3, 17), (3, 2049, 40), (513, 1, 300),
                  (1200, 300, 9)])


# DESIGN.md: float32 GEMM near 1e-6 sqrt(K); the tensor-core rungs round their inputs
# (TF32: 2^-11, bf16: 2^-8 relative), so each product is off by about twice that.
def gemm_rtol(impl, k):
    return {"cuda-tf32": 1e-3, "cuda-bf16": 8e-3}.get(impl, 0.0) + 2e-6 * np.sqrt(k)


@pytest.mark.parametrize("impl", OUR_GEMMS + ["cublas", "auto"])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("m,n,k", GEMM_SHAPES)
@pytest.mark.parametrize("misalign", [False, True])
def test_matmul(rng, m, n, k, trans_a, trans_b, impl, misalign):
    if misalign and impl not in ("cuda-regblock", "cuda-tf32", "cuda-bf16"):
        pytest.skip("only the 128-bit-load rungs have an unaligned path")
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(F32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(F32)
    out = K.matmul(gpu(a, misalign), gpu(b, misalign), trans_a, trans_b, impl=impl)
    scale = R.matmul(np.abs(a), np.abs(b), trans_a, trans_b)
    assert_close(host(out), R.matmul(a, b, trans_a, trans_b), gemm_rtol(impl, k), scale,
                 f"{impl} {m}x{n}x{k} ta={trans_a} tb={trans_b}")


@pytest.mark.skipif(SMALL, reason="8.4M-row operands")
@pytest.mark.parametrize("impl", OUR_GEMMS)
def test_a_gemm_taller_than_65535_row_tiles(rng, impl):
    """M's tiles run along grid.x: along y, where a 2-D grid allows 65535 blocks, one row
    of tiles more than this would not launch."""
    if EMULATED and impl in ("cuda-tf32", "cuda-bf16"):
        pytest.skip("65536 tensor-core blocks take minutes on the emulator")
    rows = 65535 * (32 if impl == "cuda-tiled" else 128) + 1
    a = rng.integers(-3, 4, (rows, 2)).astype(F32)
    b = rng.integers(-3, 4, (2, 3)).astype(F32)
    # small integers: exact in TF32 and bf16 too
    np.testing.assert_array_equal(host(K.matmul(gpu(a), gpu(b), impl=impl)), a @ b)


@pytest.mark.parametrize("impl, columns", [("cuda-tiled", 65535 * 32),
                                           ("cuda-regblock", 65535 * 128)])
def test_a_gemm_wider_than_a_rung_takes_is_refused(impl, columns):
    a, b = cp.ones((1, 1), cp.float32), cp.ones((1, columns + 1), cp.float32)
    with pytest.raises(ValueError, match=f"at most {columns} output columns"):
        K.matmul(a, b, impl=impl)


@pytest.mark.parametrize("impl", OUR_GEMMS + ["cublas"])
@pytest.mark.parametrize("fan_out", [7, 1000])
def test_linear_without_bias(rng, impl, fan_out):
    x = rng.standard_normal((33, 127)).astype(F32)
    w = (rng.standard_normal((127, fan_out)) / np.sqrt(127)).astype(F32)
    y = K.linear(gpu(x), gpu(w), None, "leaky_relu", impl=impl)
    scale = R.matmul(np.abs(x), np.abs(w))
    assert_close(host(y), R.linear(x, w, None, "leaky_relu")[0], 2 * gemm_rtol(impl, 127),
                 scale, "linear without bias")


@pytest.mark.parametrize("impl", OUR_GEMMS + ["cublas"])
@pytest.mark.parametrize("activation", [None, *K.ACTIVATIONS])
@pytest.mark.parametrize("batch,fan_in,fan_out", [(1, 1, 1), (33, 127, 7), (127, 300, 1000)])
def test_linear_forward_and_backward(rng, activation, batch, fan_in, fan_out, impl):
    x = rng.standard_normal((batch, fan_in)).astype(F32)
    w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(F32)
    b = rng.standard_normal(fan_out).astype(F32)
    y, z = K.linear(gpu(x), gpu(w), gpu(b), activation, return_preact=True, impl=impl)
    y_ref, z_ref = R.linear(x, w, b, activation)
    dy = rng.standard_normal(y.shape).astype(F32)
    z_tol, y_tol, grad_tols = linear_tolerances(x, w, b, activation, 0.01, host(y), host(z), dy)
    tol = 2 * gemm_rtol(impl, fan_in)
    assert_close(host(z), z_ref, tol, **z_tol, what="linear preact")
    assert_close(host(K.linear(gpu(x), gpu(w), gpu(b), activation, impl=impl)), y_ref, tol,
                 **y_tol, what=f"linear {activation}")
    grads = K.linear_backward(gpu(dy), gpu(x), gpu(w), y, activation, preact=z, impl=impl)
    refs = R.linear_backward(dy, x, w, host(y), activation, preact=host(z))
    for name, got, ref, k, kw in zip(("dx", "dw", "db"), grads, refs, (fan_out, batch, batch),
                                     grad_tols):
        assert_close(host(got), ref, 4 * gemm_rtol(impl, k), **kw, what=f"linear_backward {name}")


@pytest.mark.parametrize("name,hyper,positional,keywords", OPTIMIZER_CASES)
def test_optimizer_steps_match_the_cpu_kernels(rng, name, hyper, positional, keywords):
    """Thirteen parameters of assorted sizes in one call (two launches, the second with
    unused slots) against the CPU kernels, over three steps."""
    shapes = [(33, 1001), (7,), (1,), (300, 4), (1 << 20,), (5, 5)] + [(n,) for n in range(2, 9)]
    params = {"cpu": [rng.standard_normal(s).astype(F32) for s in shapes]}
    params["gpu"] = [gpu(p) for p in params["cpu"]]
    new = {"cpu": lambda s: np.zeros(s, F32), "gpu": lambda s: cp.zeros(s, cp.float32)}
    states = {dev: {k: [new[dev](s) for s in shapes] for k in positional + keywords}
              for dev in params}
    # each result is only as exact as the terms it was summed from: the starting value and
    # every step's move (a centered RMSprop with momentum moves p by ~0.5 in three steps,
    # and a p that ends near 0 keeps float32's error of those terms)
    terms = [np.abs(p) for p in params["cpu"]]
    for step in range(1, 4):
        grads = [rng.standard_normal(s).astype(F32) for s in shapes]
        counted = {} if name == "rmsprop" else {"step": step}
        before = [p.copy() for p in params["cpu"]]
        for dev, to_dev in (("cpu", lambda g: g), ("gpu", gpu)):
            st = states[dev]
            getattr(K, f"{name}_step")(params[dev], [to_dev(g) for g in grads],
                                       *(st[k] for k in positional),
                                       **{k: st[k] for k in keywords}, **hyper, **counted)
        for t, p, b in zip(terms, params["cpu"], before):
            t += np.abs(p - b)
    for i, (got, want) in enumerate(zip(params["gpu"], params["cpu"])):
        assert_close(host(got), want, 1e-5, terms[i], what=f"{name} param {i}")
    # sums of squares add only non-negative terms, so they are exact to a few roundings:
    # a 1 - beta2 rounded from a float32 beta2 (1.3e-5 off at 0.999) shows here
    for key in set(positional + keywords) & {"state_sum", "square_avg", "exp_avg_sq"}:
        for i, (got, want) in enumerate(zip(states["gpu"][key], states["cpu"][key])):
            assert_close(host(got), want, 2e-6, what=f"{name} {key} {i}")


# Zeros of both signs, infinities, NaN, subnormals, the largest floats and values where
# exp over- or underflows: each kernel must give what the CPU's gives, NaN for NaN.
SPECIALS = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 3e38,
                     -3e38, 100.0, -100.0, 20.0, -20.0], F32)


def assert_as_on_the_cpu(got, want, what, atol=16 * np.finfo(F32).tiny):
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


def test_special_values_give_what_the_cpu_gives():
    x = np.tile(SPECIALS, 5)
    dy = np.tile(np.array([1.0, -2.0, 0.5], F32), 25)
    for name in K.ACTIVATIONS:
        y = K.activation(x, name, 0.05)
        assert_as_on_the_cpu(host(K.activation(gpu(x), name, 0.05)), y, f"{name} forward")
        saved = x if name == "gelu" else y
        assert_as_on_the_cpu(host(K.activation_backward(gpu(dy), gpu(saved), name, 0.05)),
                             K.activation_backward(dy, saved, name, 0.05), f"{name} backward")
    z = np.repeat(SPECIALS, 4)
    t = np.tile(np.array([0.0, 1.0, 0.3, 1.0], F32), len(SPECIALS))
    for fn in (K.binary_cross_entropy_with_logits, K.mse):
        for got, want in zip(fn(gpu(z), gpu(t)), fn(z, t)):
            assert_as_on_the_cpu(host(got), want, fn.__name__)
    for p in (0.0, 0.5):
        assert_as_on_the_cpu(host(K.dropout(gpu(x), p, 7, 3)), K.dropout(x, p, 7, 3), "dropout")
    dy = np.stack([np.roll(SPECIALS, i) for i in range(130)])  # two row bands, summed
    assert_as_on_the_cpu(host(K.bias_grad(gpu(dy))), K.bias_grad(dy), "bias_grad")
    for classes in (10, 2000, 2001, 40000):  # a warp per row; a block: cached, read twice
        logits = np.zeros((len(SPECIALS), classes), F32)
        logits[:, 3], logits[:, 5] = SPECIALS, 1.0
        for label in (3, 5):
            labels = np.full(len(SPECIALS), label)
            got = K.softmax_cross_entropy(gpu(logits), cp.asarray(labels))
            losses, dlogits = K.softmax_cross_entropy(logits, labels)
            # a loss near 0 is log(s) for s near 1: exact to s's rounding, whose size is 1
            assert_as_on_the_cpu(host(got[0]), losses, "softmax losses", atol=1e-6)
            # at the label, p - 1 keeps the rounding of p near 1
            onehot = np.zeros_like(dlogits)
            onehot[:, label] = 2 * np.finfo(F32).eps
            assert_as_on_the_cpu(host(got[1]), dlogits, "softmax dlogits",
                                 atol=onehot + 16 * np.finfo(F32).tiny)
    g = np.tile(SPECIALS[np.isfinite(SPECIALS)], 2)  # a non-finite gradient poisons any step
    for name, hyper, positional, keywords in OPTIMIZER_CASES:
        steps = {}
        for dev, to in (("cpu", np.copy), ("gpu", gpu)):
            p = to(np.linspace(-1, 1, len(g)).astype(F32))
            state = {k: to(np.zeros(len(g), F32)) for k in positional + keywords}
            counted = {} if name == "rmsprop" else {"step": 1}
            getattr(K, f"{name}_step")([p], [to(g)], *([state[k]] for k in positional),
                                       **{k: [state[k]] for k in keywords}, **hyper, **counted)
            steps[dev] = p if dev == "cpu" else host(p)
        assert_as_on_the_cpu(steps["gpu"], steps["cpu"], f"{name} {hyper}")


def test_mixed_devices_are_an_error(rng):
    a = rng.standard_normal((4, 4)).astype(F32)
    with pytest.raises(RuntimeError, match="different devices"):
        K.matmul(gpu(a), a)


def test_float64_on_gpu_is_rejected():
    with pytest.raises(TypeError, match="CUDA kernels take float32"):
        K.activation(cp.zeros(4, cp.float64), "relu")


@pytest.mark.skipif(EMULATED, reason="the CPU emulator has no CUDA graphs")
def test_a_training_step_is_captured_in_a_cuda_graph(rng):
    """No op synchronizes with the host: a forward+backward+Adam step records into a CUDA
    graph (capture fails on any synchronization) and replays to the eager result."""
    x = gpu(rng.standard_normal((256, 64)).astype(F32))
    labels = cp.asarray(rng.integers(0, 10, 256))
    w1 = gpu((rng.standard_normal((64, 128)) / 8).astype(F32))
    w2 = gpu((rng.standard_normal((128, 10)) / 11).astype(F32))
    b1, b2 = cp.zeros(128, cp.float32), cp.zeros(10, cp.float32)
    params = [w1, b1, w2, b2]
    state = [(cp.zeros_like(p), cp.zeros_like(p)) for p in params]

    def step():
        h = K.linear(x, w1, b1, "relu", impl="cuda-regblock")
        d = K.dropout(h, 0.1, 5, 0)
        logits = K.linear(d, w2, b2, impl="cuda-regblock")
        losses, dlogits = K.softmax_cross_entropy(logits, labels)
        dd, dw2, db2 = K.linear_backward(dlogits, d, w2, logits, impl="cuda-regblock")
        _, dw1, db1 = K.linear_backward(K.dropout_backward(dd, 0.1, 5, 0), x, w1, h, "relu",
                                        need_input_grad=False, impl="cuda-regblock")
        for p, g, (m, v) in zip(params, (dw1, db1, dw2, db2), state):
            K.adam_step(p, g, m, v, lr=1e-3, step=1)
        return losses

    snapshot = [p.copy() for p in params]
    eager = step()  # also compiles every kernel and fills CuPy's memory pool
    eager_params = [p.copy() for p in params]
    for p, s in zip(params, snapshot):
        p[...] = s
    for m, v in state:
        m.fill(0)
        v.fill(0)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        captured = step()
        graph = stream.end_capture()
        graph.launch()
    stream.synchronize()
    np.testing.assert_allclose(host(captured), host(eager), rtol=1e-6)
    for got, want in zip(params, eager_params):
        np.testing.assert_allclose(host(got), host(want), rtol=1e-6)
