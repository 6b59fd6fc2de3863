"""Fused optimizer steps against the reference (torch.optim's definitions), several steps."""
import numpy as np
import pytest

import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R

from conftest import (
    DEVICES,
    DTYPES,
    OPTIMIZER_CASES,
    SPECIALS,
    assert_as_on_the_cpu,
    assert_close,
    gpu_test,
    on_device,
    to_host,
)

F32 = np.float32

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
STEPS = 5


def params(rng, dtype, n=1003):
    return rng.standard_normal(n).astype(dtype), [rng.standard_normal(n).astype(dtype)
                                                  for _ in range(STEPS)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum,dampening,nesterov,weight_decay",
                         [(0, 0, False, 0), (0.9, 0, False, 0), (0.9, 0.1, False, 1e-2),
                          (0.9, 0, True, 1e-2)])
def test_sgd(rng, dtype, momentum, dampening, nesterov, weight_decay):
    param, grads = params(rng, dtype)
    buf = np.zeros_like(param)
    ref_param, ref_buf = param.astype(np.float64), None
    for step, grad in enumerate(grads, 1):
        K.sgd_step(param, grad, buf, lr=0.1, momentum=momentum, dampening=dampening,
                   nesterov=nesterov, weight_decay=weight_decay, step=step)
        ref_param, ref_buf = R.sgd_step(ref_param, grad, ref_buf, 0.1, momentum, dampening,
                                        weight_decay, nesterov, step)
    assert_close(param, ref_param, RTOL[dtype], what="sgd param")
    if momentum:
        assert_close(buf, ref_buf, RTOL[dtype], what="sgd buf")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lr_decay,weight_decay", [(0, 0), (0.1, 0.01)])
def test_adagrad(rng, dtype, lr_decay, weight_decay):
    param, grads = params(rng, dtype)
    state = np.full_like(param, 0.1)
    ref = (param.astype(np.float64), state.astype(np.float64))
    for step, grad in enumerate(grads, 1):
        K.adagrad_step(param, grad, state, lr=0.05, lr_decay=lr_decay,
                       weight_decay=weight_decay, step=step)
        ref = R.adagrad_step(ref[0], grad, ref[1], 0.05, lr_decay, weight_decay, 1e-10, step)
    assert_close(param, ref[0], RTOL[dtype], what="adagrad param")
    assert_close(state, ref[1], RTOL[dtype], what="adagrad sum")


@pytest.mark.parametrize("device", DEVICES)
def test_centered_rmsprop_stays_finite_on_a_nearly_constant_gradient(rng, device):
    """mean(g^2) - mean(g)^2 is >= 0 exactly, but in float32 (and more so with the
    multiply-adds contracted, as NVCC does) a nearly constant gradient leaves it a little
    negative on many steps; its square root was NaN and the parameter with it."""
    n = 4096
    param = on_device(np.zeros(n, F32), device)
    # the averages as a long run of gradients near 1 leaves them (from zero it takes
    # thousands of steps for the start-up bias to fade below float32's resolution)
    square_avg, grad_avg = (on_device(np.ones(n, F32), device) for _ in range(2))
    for _ in range(50):
        noise = rng.uniform(1e-5, 1e-4, n) * rng.standard_normal(n)
        grad = on_device((1.0 + noise).astype(F32), device)
        K.rmsprop_step(param, grad, square_avg, grad_avg=grad_avg, lr=1e-3, alpha=0.99,
                       centered=True)
    assert np.isfinite(to_host(param)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum,centered,weight_decay", [(0, False, 0), (0.9, False, 0.01),
                                                            (0, True, 0), (0.5, True, 0.01)])
def test_rmsprop(rng, dtype, momentum, centered, weight_decay):
    """Against the float64 reference, with each element's error scaled by how much its
    rounding is amplified: g = grad + weight_decay * p rounds relative to its terms, not
    to g, and the step divides by sqrt(square_avg) (less grad_avg^2 when centered), which
    may be as small as eps. A seed whose grad nearly cancelled weight_decay * p (g about
    1e-8, square_avg 2e-18) moved one parameter 1e-4 from the reference, 5x a bound that
    ignored this; the momentum buffer carries such an error on."""
    param, grads = params(rng, dtype)
    square_avg, grad_avg, buf = (np.zeros_like(param) for _ in range(3))
    ref = (param.astype(np.float64), square_avg.astype(np.float64), grad_avg.astype(np.float64),
           buf.astype(np.float64))
    param_scale, square_scale, carried = (np.zeros(param.size) for _ in range(3))
    for grad in grads:
        K.rmsprop_step(param, grad, square_avg, grad_avg=grad_avg, momentum_buf=buf, lr=0.01,
                       momentum=momentum, centered=centered, weight_decay=weight_decay)
        terms = np.abs(grad) + weight_decay * np.abs(ref[0])  # what g's rounding is relative to
        ref = R.rmsprop_step(ref[0], grad, ref[1], 0.01, 0.99, 1e-8, weight_decay, momentum,
                             centered, ref[2], ref[3])
        ref = tuple(r if r is not None else np.zeros_like(param, np.float64) for r in ref)
        spread = np.maximum(ref[1] - ref[2] ** 2, 0.0) if centered else ref[1]
        avg = np.sqrt(spread) + 1e-8
        step = terms / avg  # g / avg's sensitivity to g, through the numerator
        if centered:  # and to square_avg - grad_avg^2, rounded relative to square_avg
            step += terms * ref[1] / avg ** 3
        carried = momentum * carried + step
        param_scale += 0.01 * carried
        square_scale = 0.99 * square_scale + 0.01 * 2 * terms ** 2
    assert_close(param, ref[0], RTOL[dtype], param_scale, what="rmsprop param")
    assert_close(square_avg, ref[1], RTOL[dtype], square_scale, what="rmsprop square_avg")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay,decoupled", [(0, False), (0.1, False), (0.1, True)])
def test_adam_and_adamw(rng, dtype, weight_decay, decoupled):
    param, grads = params(rng, dtype)
    exp_avg, exp_avg_sq = np.zeros_like(param), np.zeros_like(param)
    ref = (param.astype(np.float64), exp_avg.astype(np.float64), exp_avg_sq.astype(np.float64))
    for step, grad in enumerate(grads, 1):
        K.adam_step(param, grad, exp_avg, exp_avg_sq, lr=0.01, weight_decay=weight_decay,
                    step=step, decoupled_weight_decay=decoupled)
        ref = R.adam_step(ref[0], grad, ref[1], ref[2], 0.01, 0.9, 0.999, 1e-8, weight_decay,
                          step, decoupled)
    assert_close(param, ref[0], RTOL[dtype], what="adam param")
    assert_close(exp_avg, ref[1], RTOL[dtype], what="adam exp_avg")
    assert_close(exp_avg_sq, ref[2], RTOL[dtype], what="adam exp_avg_sq")


def test_step_updates_multidimensional_param_in_place(rng):
    param = rng.standard_normal((7, 33)).astype(np.float32)
    before = param.copy()
    grad = np.ones_like(param)
    K.sgd_step(param, grad, lr=0.5)
    np.testing.assert_allclose(param, before - 0.5)


@pytest.mark.parametrize("name,hyper,positional,keywords", OPTIMIZER_CASES)
def test_list_form_equals_one_call_per_parameter(rng, name, hyper, positional, keywords):
    """The foreach form (lists, one entry per parameter, of any shapes and dtypes) gives
    bit for bit what one call per parameter gives."""
    specs = [((33, 101), np.float32), ((7,), np.float64), ((1,), np.float32),
             ((3, 4, 5), np.float32)]
    first = [rng.standard_normal(shape).astype(dtype) for shape, dtype in specs]
    params = {"list": [p.copy() for p in first], "each": [p.copy() for p in first]}
    states = {form: {k: [np.zeros_like(p) for p in first] for k in positional + keywords}
              for form in params}
    step_fn = getattr(K, f"{name}_step")
    for step in range(1, 4):
        grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in first]
        counted = {} if name == "rmsprop" else {"step": step}
        st = states["list"]
        step_fn(params["list"], grads, *(st[k] for k in positional),
                **{k: st[k] for k in keywords}, **hyper, **counted)
        st = states["each"]
        for i, grad in enumerate(grads):
            step_fn(params["each"][i], grad, *(st[k][i] for k in positional),
                    **{k: st[k][i] for k in keywords}, **hyper, **counted)
    for got, want in zip(params["list"] + sum(states["list"].values(), []),
                         params["each"] + sum(states["each"].values(), [])):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name,hyper,positional,keywords", OPTIMIZER_CASES)
def test_a_large_parameter_steps_as_its_pieces_do(rng, name, hyper, positional, keywords):
    """A parameter past cpu/optim.PREFETCH_MIN (its blocks with lines requested ahead,
    where the build does that, and a tail) gets, bit for bit, what its pieces get from the
    plain loop, one call each."""
    from kernelgrad.kernels.cpu.optim import PREFETCH_MIN
    n = PREFETCH_MIN + 37
    cuts = [0, 1000, PREFETCH_MIN // 2, n]
    whole = {"param": rng.standard_normal(n).astype(F32)}
    whole.update({k: np.zeros(n, F32) for k in positional + keywords})
    parts = {k: v.copy() for k, v in whole.items()}
    step_fn = getattr(K, f"{name}_step")
    for step in range(1, 4):
        grad = rng.standard_normal(n).astype(F32)
        counted = {} if name == "rmsprop" else {"step": step}
        for arrays, pieces in ((whole, [slice(0, n)]),
                               (parts, [slice(a, b) for a, b in zip(cuts, cuts[1:])])):
            for cut in pieces:
                step_fn(arrays["param"][cut], grad[cut], *(arrays[k][cut] for k in positional),
                        **{k: arrays[k][cut] for k in keywords}, **hyper, **counted)
    for key in whole:
        np.testing.assert_array_equal(whole[key], parts[key], err_msg=key)


@gpu_test
@pytest.mark.parametrize("name,hyper,positional,keywords", OPTIMIZER_CASES)
def test_cuda_steps_match_the_cpu_kernels(rng, name, hyper, positional, keywords):
    """Thirteen parameters of assorted sizes in one call (two launches, the second with
    unused slots) against the CPU kernels, over three steps."""
    shapes = [(33, 1001), (7,), (1,), (300, 4), (1 << 20,), (5, 5)] + [(n,) for n in range(2, 9)]
    params = {"cpu": [rng.standard_normal(s).astype(F32) for s in shapes]}
    params["gpu"] = [on_device(p, "cuda") for p in params["cpu"]]
    new = {"cpu": lambda s: np.zeros(s, F32), "gpu": lambda s: on_device(np.zeros(s, F32), "cuda")}
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
        for dev in ("cpu", "gpu"):
            st = states[dev]
            getattr(K, f"{name}_step")(params[dev], [on_device(g, "cuda" if dev == "gpu" else "cpu")
                                                        for g in grads],
                                       *(st[k] for k in positional),
                                       **{k: st[k] for k in keywords}, **hyper, **counted)
        for t, p, b in zip(terms, params["cpu"], before):
            t += np.abs(p - b)
    for i, (got, want) in enumerate(zip(params["gpu"], params["cpu"])):
        assert_close(to_host(got), want, 1e-5, terms[i], what=f"{name} param {i}")
    # sums of squares add only non-negative terms, so they are exact to a few roundings:
    # a 1 - beta2 rounded from a float32 beta2 (1.3e-5 off at 0.999) shows here
    for key in set(positional + keywords) & {"state_sum", "square_avg", "exp_avg_sq"}:
        for i, (got, want) in enumerate(zip(states["gpu"][key], states["cpu"][key])):
            assert_close(to_host(got), want, 2e-6, what=f"{name} {key} {i}")


@gpu_test
def test_cuda_special_values_give_what_the_cpu_gives():
    g = np.tile(SPECIALS[np.isfinite(SPECIALS)], 2)  # a non-finite gradient poisons any step
    for name, hyper, positional, keywords in OPTIMIZER_CASES:
        steps = {}
        for device in ("cpu", "cuda"):
            p = on_device(np.linspace(-1, 1, len(g)).astype(F32), device)
            state = {k: on_device(np.zeros(len(g), F32), device) for k in positional + keywords}
            counted = {} if name == "rmsprop" else {"step": 1}
            getattr(K, f"{name}_step")([p], [on_device(g, device)],
                                       *([state[k]] for k in positional),
                                       **{k: [state[k]] for k in keywords}, **hyper, **counted)
            steps[device] = to_host(p)
        assert_as_on_the_cpu(steps["cuda"], steps["cpu"], f"{name} {hyper}")
