"""Modules: registration, modes, state dicts, initializers, dropout in train and eval,
and checkpoints on disk."""
import os

import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn


def mlp(dropout=0.5, dtype=np.float32):
    return nn.Sequential(nn.Linear(4, 8, activation="relu", dtype=dtype), nn.Dropout(dropout),
                         nn.Linear(8, 3, dtype=dtype))


def test_parameters_are_registered_in_order():
    model = mlp()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [p.shape for p in model.parameters()] == [(4, 8), (8,), (8, 3), (3,)]
    assert all(p.requires_grad and p.dtype == np.float32 for p in model.parameters())


def test_linear_without_bias_and_custom_modules():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(3, 2, bias=False)
            self.scale = nn.Parameter(np.ones(2, np.float32))

        def forward(self, x):
            return self.inner(x) * self.scale

    block = Block()
    assert [n for n, _ in block.named_parameters()] == ["scale", "inner.weight"]
    assert block.inner.bias is None
    assert block(kg.Tensor(np.ones((5, 3), np.float32))).shape == (5, 2)


def test_linear_without_bias_computes_x_w():
    layer = nn.Linear(128, 300, bias=False)
    x = np.random.default_rng(0).standard_normal((64, 128), dtype=np.float32)
    expected = x.astype(np.float64) @ layer.weight.numpy()
    assert np.allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    step = kg.capture(nn.Sequential(layer), nn.MSELoss(), kg.optim.SGD(layer.parameters(), 0.0))
    target = np.zeros((64, 300), np.float32)
    step(x, target)  # the first call of a signature runs eagerly and records the plan
    _, outputs = step(x, target)  # this one replays it
    assert np.allclose(outputs, expected, rtol=1e-5, atol=1e-5)


def test_module_requires_super_init():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_train_and_eval_reach_every_submodule():
    model = mlp()
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_dropout_is_active_in_train_and_identity_in_eval(rng):
    layer = nn.Dropout(0.25)
    x = kg.Tensor(rng.standard_normal((200, 500)).astype(np.float32))
    y = layer(x).data
    dropped = y == 0
    assert abs(dropped.mean() - 0.25) < 0.01
    np.testing.assert_allclose(y[~dropped], x.data[~dropped] / 0.75, rtol=1e-6)
    assert not np.array_equal(layer(x).data, y), "each call draws a new mask"
    layer.eval()
    assert layer(x) is x


def test_same_seed_same_training_bit_for_bit(rng):
    x = rng.standard_normal((64, 4)).astype(np.float32)
    labels = rng.integers(0, 3, 64)

    def run():
        kg.manual_seed(42)
        model = mlp(dropout=0.3)
        optimizer = kg.optim.Adam(model.parameters(), lr=0.01)
        for xb, yb in kg.data.DataLoader(x, labels, batch_size=16, shuffle=True, seed=1):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        return [p.data.copy() for p in model.parameters()]

    first, second = run(), run()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    kg.manual_seed(43)
    assert not np.array_equal(mlp(dropout=0.3)[0].weight.data, first[0])


@pytest.mark.parametrize("activation,expected", [
    ("relu", np.sqrt(6 / 100)), ("gelu", np.sqrt(6 / 100)),
    ("leaky_relu", np.sqrt(6 / (100 * (1 + 0.01 ** 2)))),
    ("tanh", np.sqrt(6 / 150)), ("sigmoid", np.sqrt(6 / 150)), (None, np.sqrt(6 / 150)),
])
def test_initializer_suits_the_activation(activation, expected):
    layer = nn.Linear(100, 50, activation=activation)
    assert nn.init_bound(100, 50, activation) == pytest.approx(expected)
    w = layer.weight.data
    assert np.abs(w).max() <= expected
    assert np.abs(w).max() > 0.95 * expected  # uniform over the whole interval
    assert abs(w.std() - expected / np.sqrt(3)) < 0.05 * expected
    np.testing.assert_array_equal(layer.bias.data, 0)


def test_linear_rejects_bad_arguments():
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="unknown activation"):
        nn.Linear(3, 3, activation="swish")
    with pytest.raises(ValueError, match="p"):
        nn.Dropout(1.0)


def test_state_dict_round_trip_and_load_in_place():
    source, target = mlp(), mlp()
    weight_before = target[0].weight
    target.load_state_dict(source.state_dict())
    assert target[0].weight is weight_before  # optimizers keep their references
    for a, b in zip(source.parameters(), target.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_load_state_dict_names_what_does_not_fit():
    model = mlp()
    state = dict(model.state_dict())
    del state["2.bias"]
    with pytest.raises(KeyError, match=r"missing keys \['2.bias'\]"):
        model.load_state_dict(state)
    state = dict(model.state_dict(), extra=np.zeros(2))
    with pytest.raises(KeyError, match=r"unexpected keys \['extra'\]"):
        model.load_state_dict(state)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == [] and unexpected == ["extra"]
    state = dict(model.state_dict(), **{"0.weight": np.zeros((8, 4))})
    with pytest.raises(ValueError, match=r"0.weight.*\(8, 4\).*\(4, 8\)"):
        model.load_state_dict(state)


def test_checkpoint_round_trip_is_exact(tmp_path):
    model = mlp(dtype=np.float64)
    path = tmp_path / "model.safetensors"
    kg.save(model, path)
    assert os.listdir(tmp_path) == ["model.safetensors"]  # the temporary file was renamed
    state = kg.load(path)
    assert list(state) == [name for name, _ in model.named_parameters()]
    fresh = mlp(dtype=np.float64)
    fresh.load_state_dict(state)
    for a, b in zip(model.parameters(), fresh.parameters()):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a.data, b.data)


def test_checkpoint_that_does_not_fit_the_model_is_an_error(tmp_path):
    kg.save(nn.Linear(4, 8), tmp_path / "small.npz")
    with pytest.raises(KeyError, match="missing keys"):
        mlp().load_state_dict(kg.load(tmp_path / "small.npz"))
    kg.save(nn.Sequential(nn.Linear(4, 9), nn.Dropout(), nn.Linear(9, 3)), tmp_path / "w.npz")
    with pytest.raises(ValueError, match="0.weight"):
        mlp().load_state_dict(kg.load(tmp_path / "w.npz"))


def test_checkpoints_never_unpickle(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, payload=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="Python objects"):
        kg.load(path)
    with pytest.raises(ValueError, match="dtype object"):
        kg.save({"x": np.array([None], dtype=object)}, tmp_path / "bad.npz")
    assert sorted(os.listdir(tmp_path)) == ["evil.npz"]


def test_loss_modules_match_functional(rng):
    z = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6)
    assert nn.CrossEntropyLoss()(z, labels).item() == nn.functional.cross_entropy(z, labels).item()
    assert nn.CrossEntropyLoss(reduction="sum")(z, labels).item() == pytest.approx(
        nn.functional.cross_entropy(z, labels, reduction="none").data.sum())
    assert nn.MSELoss()(z, z * 0).item() == pytest.approx(np.mean(z * z))
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss("avg")


def test_sequential_indexing_and_repr():
    model = mlp()
    assert len(model) == 3 and isinstance(model[1], nn.Dropout)
    assert [type(m).__name__ for m in model] == ["Linear", "Dropout", "Linear"]
    assert "activation='relu'" in repr(model) and "p=0.5" in repr(model)
