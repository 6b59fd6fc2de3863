"""Bad input to the layer API: each a clear exception that names the problem, raised
before any kernel runs and before any state changes."""
import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn
from kernelgrad.nn import functional as F


def test_linear_with_mismatched_input(monkeypatch):
    monkeypatch.setattr(F, "_converted", set())  # it warns once per process
    layer = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"input has shape \(5, 6\) and the weight \(4, 3\)"):
        layer(kg.Tensor(np.zeros((5, 6), np.float32)))
    with pytest.warns(UserWarning, match="float64 input to a float32 layer is converted"):
        F.input_like(np.zeros((5, 4)), np.dtype("float32"))


def test_losses_with_mismatched_shapes():
    logits = kg.Tensor(np.zeros((5, 3), np.float32), requires_grad=True)
    with pytest.raises(ValueError, match=r"labels has shape \(4,\) but logits have 5 rows"):
        F.cross_entropy(logits, np.zeros(4, np.int64))
    with pytest.raises(ValueError, match=r"shape \(5, 3\).*shape \(5,\)"):
        F.mse_loss(logits, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"shape \(5, 3\).*shape \(3, 5\)"):
        F.binary_cross_entropy_with_logits(logits, np.zeros((3, 5), np.float32))


def test_labels_out_of_range_or_not_integers():
    logits = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"label 4 is outside \[0, 4\)"):
        F.cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"label -1 is outside"):
        F.cross_entropy(logits, np.array([0, -1, 1]))
    with pytest.raises(TypeError, match="labels must be integers, got dtype float64"):
        F.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))


def test_unknown_reduction():
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(np.zeros((2, 2), np.float32), np.array([0, 1]), reduction="avg")


def test_empty_batch():
    with pytest.raises(ValueError, match="empty"):
        nn.Linear(4, 3)(kg.Tensor(np.zeros((0, 4), np.float32)))


class FakeCupyArray(np.ndarray):
    """Stands in for a CuPy array: the device is read from the array type's module."""


FakeCupyArray.__module__ = "cupy._core.core"


def test_mixing_devices_names_both():
    x = np.zeros((2, 4), np.float32).view(FakeCupyArray)
    assert kg.Tensor(x).device == "cuda"
    with pytest.raises(RuntimeError, match="different devices \\(cpu and cuda\\)"):
        nn.Linear(4, 3)(kg.Tensor(x))
    with pytest.raises(RuntimeError, match="different devices"):
        F.cross_entropy(np.zeros((2, 4), np.float32), np.array([0, 1]).view(FakeCupyArray))
    with pytest.raises(RuntimeError, match="different devices"):
        kg.Tensor(np.zeros((3, 2)), requires_grad=True) @ x


def test_dropout_probability():
    with pytest.raises(ValueError, match="p \\(the drop probability\\) must be < 1"):
        F.dropout(kg.Tensor(np.ones(3, np.float32)), 1.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        F.dropout(kg.Tensor(np.ones(3, np.float32)), -0.1, training=False)


@pytest.mark.parametrize("make", [
    lambda p: kg.optim.SGD(p, lr=float("nan")),
    lambda p: kg.optim.Adam(p, lr=float("inf")),
    lambda p: kg.optim.Adam(p, betas=(0.9, 1.0)),
    lambda p: kg.optim.Adam(p, eps=-1.0),
    lambda p: kg.optim.RMSprop(p, alpha=float("nan")),
    lambda p: kg.optim.SGD(p, lr=0.1, nesterov=True),
], ids=["nan-lr", "inf-lr", "beta2-1", "negative-eps", "nan-alpha", "nesterov-no-momentum"])
def test_optimizer_hyper_parameters_are_checked_at_construction(make):
    with pytest.raises(ValueError):
        make(nn.Linear(2, 2).parameters())


def test_optimizer_needs_trainable_tensors():
    with pytest.raises(ValueError, match="empty parameter list"):
        kg.optim.Adam([])
    with pytest.raises(TypeError, match="require grad"):
        kg.optim.Adam([kg.Tensor(np.zeros(2))])


def test_a_failed_step_changes_nothing():
    """Every parameter of a step is checked before any is updated (one kernel call per
    group), and the step counts move only when the step is taken."""
    layer = nn.Linear(2, 2)
    before = [p.data.copy() for p in layer.parameters()]
    layer.bias.grad = np.ones(2, np.float32)  # a good gradient, for a parameter listed second
    layer.weight.grad = np.zeros((3, 3), np.float32)  # a gradient of the wrong shape
    opt = kg.optim.Adam(layer.parameters())
    with pytest.raises(ValueError,
                       match=r"grad\[0\] has shape \(3, 3\) but param\[0\] has shape \(2, 2\)"):
        opt.step()
    for p, old in zip(layer.parameters(), before):
        np.testing.assert_array_equal(p.data, old)
    assert all(state["step"] == 0 for state in opt.state.values())
    layer.weight.grad = np.ones((2, 2), np.float32)
    opt.step()
    assert [opt.state[id(p)]["step"] for p in layer.parameters()] == [1, 1]


# ---- regressions: each once broke the promise that a failed call changes nothing ----

def _adam_over_two_groups():
    first, second = nn.Linear(2, 2), nn.Linear(2, 2)
    opt = kg.optim.Adam([{"params": first.parameters()},
                         {"params": second.parameters(), "lr": 0.1}])
    for p in [*first.parameters(), *second.parameters()]:
        p.grad = np.ones(p.shape, np.float32)
    return first, second, opt


@pytest.mark.parametrize("bad", ["second group", "second step count"])
def test_optimizer_step_moves_nothing_when_any_group_fails(bad):
    """A float16 gradient on a later parameter: the earlier ones had already moved and
    their step counts advanced (across param groups, and across step-count groups)."""
    first, second, opt = _adam_over_two_groups()
    if bad == "second step count":
        opt.step()  # every parameter at step 1; then one is added to the first group
        extra = nn.Parameter(np.zeros(2, np.float32))
        extra.grad = np.ones(2, np.float16)
        opt.param_groups[0]["params"].append(extra)
    else:
        second.bias.grad = np.ones(2, np.float16)
    params = [*first.parameters(), *second.parameters()]
    before = [p.data.copy() for p in params]
    steps = {k: dict(v) for k, v in opt.state.items()}
    with pytest.raises(TypeError, match="float16"):
        opt.step()
    for p, old in zip(params, before):
        np.testing.assert_array_equal(p.data, old)
    assert {k: v["step"] for k, v in opt.state.items()} == {k: v["step"]
                                                           for k, v in steps.items()}


def test_load_state_dict_converts_and_checks_every_value_first():
    """A string array after three good entries: the three were written before the fourth
    failed. Object arrays loaded as NaN and complex ones lost their imaginary part."""
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 2))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    good = {k: v + 1 for k, v in before.items()}
    for bad in (np.array(["a", "b"]), np.array([None, 1.0], dtype=object),
                np.array([1 + 2j, 3j])):
        with pytest.raises(TypeError, match=r"1\.bias"):
            model.load_state_dict({**good, "1.bias": bad})
        for name, value in model.state_dict().items():
            np.testing.assert_array_equal(value, before[name])


@pytest.mark.parametrize("make, match", [
    (lambda p: kg.optim.Adam(p, betas=(0.9, 0.999, 0.5)), "betas must be a pair"),
    (lambda p: kg.optim.RMSprop(p, alpha=2.0), "alpha must be <= 1"),
    (lambda p: kg.optim.SGD(p, dampening=2.0), "dampening must be <= 1"),
    (lambda p: kg.optim.Adagrad(p, initial_accumulator_value=-1.0), ">= 0"),
    (lambda p: kg.optim.Adagrad(p, initial_accumulator_value=float("nan")), "finite"),
    (lambda p: kg.optim.SGD(p, lr=10 ** 400), "finite"),
    (lambda p: kg.optim.SGD(list(p) * 2), "appears twice"),
])
def test_optimizer_arguments_fail_at_construction_not_at_the_first_step(make, match):
    with pytest.raises(ValueError, match=match):
        make(nn.Linear(2, 2).parameters())


def test_early_stopping_refuses_a_nan_min_delta():
    with pytest.raises(ValueError, match="min_delta must be finite"):
        nn.EarlyStopping(min_delta=float("nan"))  # it never improved


def test_a_failed_dropout_takes_no_offset():
    kg.manual_seed(5)
    with pytest.raises(TypeError):
        F.dropout(kg.Tensor(np.ones(3, np.int32)), 0.5)
    first = F.dropout(kg.Tensor(np.ones(1000, np.float32)), 0.5).data
    kg.manual_seed(5)
    np.testing.assert_array_equal(F.dropout(kg.Tensor(np.ones(1000, np.float32)), 0.5).data,
                                  first)


def test_a_failed_layer_construction_takes_no_initialization_draw():
    kg.manual_seed(3)
    with pytest.raises(TypeError, match="int32"):
        nn.Linear(4, 4, dtype=np.int32)
    after_failure = nn.Linear(4, 4).weight.data
    kg.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(4, 4).weight.data, after_failure)


def test_fit_checks_its_validation_data_before_the_first_epoch():
    model = nn.Sequential(nn.Linear(4, 3))
    model.compile("sgd", nn.CrossEntropyLoss())
    before = [p.data.copy() for p in model.parameters()]
    x, y = np.ones((8, 4), np.float32), np.zeros(8, np.int64)
    with pytest.raises(ValueError, match="validation data"):
        model.fit(x, y, validation_data=(np.ones((5, 7), np.float32), np.zeros(5, np.int64)),
                  verbose=0)
    with pytest.raises(ValueError, match="monitors 'val_acc'"):
        model.fit(x, y, validation_data=(x, y), callbacks=[nn.EarlyStopping("val_acc")],
                  verbose=0)
    for p, old in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, old)


def test_unclear_shape_errors_are_clear():
    with pytest.raises(ValueError, match="0-d"):
        kg.data.DataLoader(np.array(3.0))
    with pytest.raises(ValueError, match="last dimension must be in_features"):
        nn.Linear(3, 2)(kg.Tensor(np.zeros(0, np.float32)))


def test_a_wrong_shaped_choices_cache_is_ignored_and_rewritten(tmp_path, monkeypatch):
    import json

    from kernelgrad.kernels import _autotune
    monkeypatch.setenv("KERNELGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_autotune, "_choices", None)
    for content in ("[1, 2]", "null", '{"k": 3}'):
        (tmp_path / _autotune._machine_file_name()).write_text(content)
        monkeypatch.setattr(_autotune, "_choices", None)
        assert _autotune.choices() == {}
    monkeypatch.setattr(_autotune, "SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(_autotune, "NOISE", float("inf"))  # record whatever was measured
    monkeypatch.setattr(_autotune, "BUSY_CORES", float("inf"))
    _autotune.run("key", "auto", {"numba": lambda: 1, "blas": lambda: 2})
    assert set(json.loads((tmp_path / _autotune._machine_file_name()).read_text())) == {"key"}
