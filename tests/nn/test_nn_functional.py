"""Every differentiable op of kernelgrad.nn.functional, and whole MLPs with each activation
and each loss, by finite differences in float64."""
import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn
from kernelgrad.nn import functional as F

from conftest import gradcheck

ACTIVATIONS = [None, "relu", "leaky_relu", "sigmoid", "tanh", "gelu"]


def t(rng, *shape, scale=1.0):
    return kg.Tensor(rng.standard_normal(shape) * scale, requires_grad=True)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("x_shape", [(5, 7), (7,), (2, 3, 7)])
def test_linear(rng, activation, x_shape):
    gradcheck(lambda x, w, b: F.linear(x, w, b, activation, alpha=0.1),
              t(rng, *x_shape), t(rng, 7, 4), t(rng, 4))


def test_linear_without_bias(rng):
    gradcheck(lambda x, w: F.linear(x, w, None, "tanh"), t(rng, 6, 3), t(rng, 3, 2))


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh", "gelu"])
def test_activations(rng, name):
    f = {"relu": F.relu, "leaky_relu": lambda x: F.leaky_relu(x, 0.2), "sigmoid": F.sigmoid,
         "tanh": F.tanh, "gelu": F.gelu}[name]
    gradcheck(f, t(rng, 4, 9, scale=2.0))


@pytest.mark.parametrize("f", [F.softmax, F.log_softmax, lambda x: F.softmax(x, axis=0)],
                         ids=["softmax", "log_softmax", "softmax-axis0"])
def test_softmax_family(rng, f):
    gradcheck(f, t(rng, 5, 6, scale=3.0))


def test_softmax_matches_exp_of_log_softmax(rng):
    x = rng.standard_normal((4, 5)) * 50
    np.testing.assert_allclose(F.softmax(x).data, np.exp(F.log_softmax(x).data), rtol=1e-12)
    np.testing.assert_allclose(F.softmax(x).data.sum(axis=1), 1.0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(rng, reduction):
    labels = rng.integers(0, 6, 5)
    gradcheck(lambda z: F.cross_entropy(z, labels, reduction=reduction), t(rng, 5, 6, scale=3.0))


def test_cross_entropy_equals_minus_log_softmax_at_the_label(rng):
    z = rng.standard_normal((5, 6))
    labels = rng.integers(0, 6, 5)
    expected = -F.log_softmax(z).data[np.arange(5), labels]
    np.testing.assert_allclose(F.cross_entropy(z, labels, reduction="none").data, expected,
                               rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(z, labels).item(), expected.mean(), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_with_logits(rng, reduction):
    targets = rng.integers(0, 2, (4, 3)).astype(np.float64)
    gradcheck(lambda z: F.binary_cross_entropy_with_logits(z, targets, reduction),
              t(rng, 4, 3, scale=3.0))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(rng, reduction):
    target = rng.standard_normal((4, 3))
    gradcheck(lambda y: F.mse_loss(y, target, reduction), t(rng, 4, 3))


def test_dropout(rng):
    gradcheck(lambda x: F.dropout(x, 0.3, training=True), t(rng, 8, 9))


def mlp(activation, n_out, seed):
    kg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8, activation=activation, dtype=np.float64),
                          nn.Dropout(0.25),
                          nn.Linear(8, 6, activation=activation, dtype=np.float64),
                          nn.Linear(6, n_out, dtype=np.float64))
    # Nonzero biases: with zero ones, a row that dropout and ReLU zero out entirely puts
    # the next pre-activation exactly on ReLU's kink, where no derivative exists.
    rng = np.random.default_rng(seed)
    for layer in (model[0], model[2], model[3]):
        layer.bias.data[:] = rng.standard_normal(layer.bias.shape) * 0.5
    return model


LOSSES = {
    "cross_entropy": (4, lambda rng: rng.integers(0, 4, 7), F.cross_entropy),
    "bce": (3, lambda rng: rng.integers(0, 2, (7, 3)).astype(np.float64),
            F.binary_cross_entropy_with_logits),
    "mse": (2, lambda rng: rng.standard_normal((7, 2)), F.mse_loss),
}


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", list(LOSSES))
def test_whole_mlp(rng, activation, loss):
    """Gradients of every parameter of a 5-8-6-n MLP with dropout (the library seed is
    reset before each evaluation, so the mask is fixed)."""
    n_out, make_target, loss_fn = LOSSES[loss]
    model = mlp(activation, n_out, seed=3)
    x, target = rng.standard_normal((7, 5)), make_target(rng)
    gradcheck(lambda *params: loss_fn(model(x), target), *model.parameters())


def test_input_gradient_through_an_mlp(rng):
    model = mlp("gelu", 4, seed=4)
    labels = rng.integers(0, 4, 7)
    gradcheck(lambda x: F.cross_entropy(model(x), labels), t(rng, 7, 5))
