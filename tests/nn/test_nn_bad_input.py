"""Bad input to the layer API: each a clear exception that names the problem, raised
before any kernel runs and before any state changes."""
import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn
from kernelgrad.nn import functional as F


def test_linear_with_mismatched_input():
    layer = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"x has shape \(5, 6\) but w has shape \(4, 3\)"):
        layer(kg.Tensor(np.zeros((5, 6), np.float32)))
    with pytest.raises(TypeError, match="float64 but w is float32|x is float64"):
        layer(kg.Tensor(np.zeros((5, 4))))


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
