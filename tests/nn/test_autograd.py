"""The Tensor and its backward engine: gradients of every op by finite differences,
accumulation, broadcasting, no_grad, long chains, and the lecture's examples."""
import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn

from conftest import gradcheck


def t(rng, *shape, positive=False):
    data = rng.standard_normal(shape)
    return kg.Tensor(np.abs(data) + 0.5 if positive else data, requires_grad=True)


@pytest.mark.parametrize("op", [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b,
    lambda a, b: 2.0 - a * 3.0 + b / 4.0, lambda a, b: 1.5 / b, lambda a, b: -a,
    lambda a, b: a ** 3, lambda a, b: b ** 0.5, lambda a, b: b ** a, lambda a, b: 2.0 ** a,
    lambda a, b: a.exp(), lambda a, b: b.log(),
], ids=["add", "sub", "mul", "div", "mixed-scalars", "rdiv", "neg", "pow", "sqrt",
        "tensor-pow", "rpow", "exp", "log"])
def test_elementwise_ops(rng, op):
    gradcheck(op, t(rng, 3, 4), t(rng, 3, 4, positive=True))


@pytest.mark.parametrize("shapes", [((3, 4), (4,)), ((3, 4), (3, 1)), ((3, 1), (1, 4)),
                                    ((2, 3, 4), (4,)), ((3, 4), ())])
def test_broadcasting_gradients_reduce_to_each_shape(rng, shapes):
    a, b = t(rng, *shapes[0]), t(rng, *shapes[1])
    gradcheck(lambda a, b: a * b + a / (b * b + 1.0), a, b)
    assert a.grad.shape == a.shape and b.grad.shape == b.shape


@pytest.mark.parametrize("op", [
    lambda a: a.sum(), lambda a: a.sum(axis=0), lambda a: a.sum(axis=1, keepdims=True),
    lambda a: a.mean(), lambda a: a.mean(axis=(0, 2)), lambda a: a.reshape(6, 4),
    lambda a: a.reshape((4, -1)), lambda a: a.T, lambda a: a.permute(1, 0, 2),
    lambda a: a.transpose(0, 2),
    lambda a: a[1], lambda a: a[:, 1:3], lambda a: a[np.array([0, 0, 1])],
    lambda a: a[a.data > 0],
], ids=["sum", "sum-axis", "sum-keepdims", "mean", "mean-axes", "reshape", "reshape-tuple",
        "T", "permute", "transpose", "index", "slice", "fancy-repeated", "mask"])
def test_shape_ops_and_reductions(rng, op):
    gradcheck(op, t(rng, 2, 3, 4))


@pytest.mark.parametrize("shapes", [((5, 7), (7, 3)), ((7,), (7, 3)), ((5, 7), (7,)),
                                    ((1, 1), (1, 9)), ((33, 1), (1, 2))])
def test_matmul(rng, shapes):
    gradcheck(lambda a, b: a @ b, t(rng, *shapes[0]), t(rng, *shapes[1]))


def test_matmul_with_an_array_operand(rng):
    w = t(rng, 4, 3)
    x = rng.standard_normal((2, 4))
    gradcheck(lambda w: x @ w, w)


def test_gradients_accumulate_until_cleared(rng):
    x = t(rng, 3)
    (x * x).sum().backward()
    first = x.grad.data.copy()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    x.zero_grad()
    assert x.grad is None


def test_shared_gradient_arrays_are_not_aliased(rng):
    a, b = t(rng, 3), t(rng, 3)
    (a + b).sum().backward()
    a.grad *= 10  # an in-place edit of one leaf's gradient must not touch the other's
    np.testing.assert_array_equal(b.grad, np.ones(3))


def test_a_chain_of_10000_ops_needs_no_recursion(rng):
    x = kg.Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 10_000], rtol=1e-10)


def test_diamond_graph_sums_both_paths(rng):
    x = t(rng, 4)
    y = x * 2.0
    gradcheck(lambda x: (x * 2.0).exp() + (x * 2.0) * (x * 2.0), x)
    x.grad = None
    (y * y + y).sum().backward()
    np.testing.assert_allclose(x.grad, 8 * x.data + 2)


def test_no_grad_records_nothing(rng):
    x = t(rng, 3)
    with kg.no_grad():
        y = (x * 2).sum()
        assert not kg.is_grad_enabled()
    assert kg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf


def test_backward_on_non_scalar_needs_a_gradient(rng):
    x = t(rng, 3)
    with pytest.raises(RuntimeError, match=r"shape \(3,\) needs a gradient"):
        (x * 2).backward()
    (x * 2).backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(x.grad, [2.0, 4.0, 6.0])
    with pytest.raises(ValueError, match="gradient has shape"):
        (x * 2).backward(np.ones(4))


def test_backward_without_any_grad_input_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        kg.Tensor([1.0, 2.0]).sum().backward()


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        kg.Tensor(np.arange(3), requires_grad=True)


def test_python_floats_become_float32_and_arrays_keep_their_dtype():
    assert kg.Tensor([1.0, 2.0]).dtype == np.float32
    assert kg.Tensor(np.zeros(2)).dtype == np.float64
    x = kg.Tensor(np.ones(2, np.float32), requires_grad=True)
    y = (x * 2.0 + 1.0) / 3.0
    assert y.dtype == np.float32  # Python scalars do not promote (NEP 50)
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_numpy_array_on_the_left_defers_to_tensor(rng):
    x = t(rng, 3)
    y = np.ones(3) * x
    assert isinstance(y, kg.Tensor) and y.requires_grad


def test_tensor_conveniences():
    x = kg.tensor([[1.0, 2.0]], requires_grad=True)
    assert x.shape == (1, 2) and x.ndim == 2 and x.size() == (1, 2) and x.numel() == 2
    assert len(x) == 1
    assert x.device == "cpu" and x.to("cpu") is x
    assert (x.sum()).item() == 3.0
    assert isinstance(x.numpy(), np.ndarray)
    assert not x.detach().requires_grad
    assert x.double().dtype == np.float64
    with pytest.raises(ValueError, match="one-element"):
        x.item()


def test_to_cuda_without_the_cuda_build_is_a_clear_error():
    with pytest.raises(RuntimeError, match="device 'cuda' is not usable"):
        kg.Tensor([1.0]).to("cuda")
    with pytest.raises(ValueError, match="device must be one of"):
        kg.Tensor([1.0]).to("gpu")


# ---- the lecture's examples ----

def test_lecture_perceptron():
    """w = [3, -2], b = 1 on x = [-1, 2]: sigmoid(3*-1 - 2*2 + 1) = sigmoid(-6) = 0.00247."""
    perceptron = nn.Linear(2, 1, activation="sigmoid", dtype=np.float64)
    perceptron.weight.data[:] = [[3.0], [-2.0]]
    perceptron.bias.data[:] = 1.0
    y = perceptron(kg.Tensor(np.array([-1.0, 2.0])))
    assert y.shape == (1,)
    np.testing.assert_allclose(y.item(), 1 / (1 + np.exp(6.0)), rtol=1e-12)
    assert round(y.item(), 5) == 0.00247


def test_lecture_derivative_of_x_squared():
    x = kg.Tensor(3.0, requires_grad=True)
    (x ** 2).backward()
    assert x.grad == 6.0


def test_lecture_gradient_descent_on_a_parabola():
    """(x - 4)^2 from x = 0 with lr 0.01: x_n = 4 - 4 * 0.98^n, 3.99983 after 500 steps."""
    x = kg.Tensor(np.array([0.0]), requires_grad=True)
    optimizer = kg.optim.SGD([x], lr=0.01)
    for _ in range(500):
        optimizer.zero_grad()
        ((x - 4.0) ** 2).sum().backward()
        optimizer.step()
    np.testing.assert_allclose(x.data, [4 - 4 * 0.98 ** 500], rtol=1e-12)
    assert abs(x.item() - 4.0) < 1e-3
