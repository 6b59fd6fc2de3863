"""Mini-batches, datasets, fit() with early stopping, and the `kernelgrad train` command."""
import gzip

import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn

# ---- DataLoader ----

def test_dataloader_batches_cover_every_sample_once():
    x, y = np.arange(10.0).reshape(10, 1), np.arange(10)
    batches = list(kg.data.DataLoader(x, y, batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert all(isinstance(a, kg.Tensor) for b in batches for a in b)
    np.testing.assert_array_equal(np.concatenate([b[1].data for b in batches]), y)
    assert len(kg.data.DataLoader(x, y, batch_size=4, drop_last=True)) == 2


def test_dataloader_reshuffles_each_epoch_reproducibly():
    y = np.arange(100)
    loader = kg.data.DataLoader(y, batch_size=100, shuffle=True, seed=3)
    first, second = (next(iter(loader))[0].data for _ in range(2))
    assert not np.array_equal(first, second)
    assert sorted(first) == list(y)
    again = kg.data.DataLoader(y, batch_size=100, shuffle=True, seed=3)
    np.testing.assert_array_equal(next(iter(again))[0].data, first)


def test_dataloader_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in length"):
        kg.data.DataLoader(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        kg.data.DataLoader(np.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        kg.data.DataLoader(np.zeros(0))


def test_train_test_split_is_stratified_and_disjoint():
    x, y = kg.data.load_digits()
    x_train, x_test, y_train, y_test = kg.data.train_test_split(x, y, test_size=0.2, seed=0)
    assert len(x_train) + len(x_test) == 1797 and abs(len(x_test) - 359) <= 5
    for c in range(10):
        assert abs(np.mean(y_test == c) - np.mean(y == c)) < 0.01
    rows = {r.tobytes() for r in x_train}
    assert sum(r.tobytes() in rows for r in x_test) < 5  # (the digits have a few duplicates)


def test_datasets():
    x, y = kg.data.load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0 and x.max() == 1 and set(y) == set(range(10))
    x, y = kg.data.load_passfail(n=300, seed=1)
    assert x.shape == (300, 2) and set(y) == {0, 1}
    assert 0 <= x.min() and x.max() <= 10
    np.testing.assert_array_equal(kg.data.load_passfail(n=300, seed=1)[0], x)


def write_idx(path, array, compress):
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim])
    header += np.array(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(payload)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_from_local_idx_files(tmp_path, rng, compress):
    suffix = ".gz" if compress else ""
    images = rng.integers(0, 256, (7, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, compress)
    x, y = kg.data.load_mnist(tmp_path, "test")
    assert x.shape == (7, 784) and x.dtype == np.float32
    np.testing.assert_allclose(x, images.reshape(7, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    assert kg.data.read_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}").shape == (7, 28, 28)


def test_mnist_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        kg.data.load_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        kg.data.read_idx(tmp_path / "train-images-idx3-ubyte")
    write_idx(tmp_path / "short", np.zeros((2, 3), np.uint8), False)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match="header says shape"):
        kg.data.read_idx(tmp_path / "short")


# ---- fit and early stopping ----

def small_problem(seed=0):
    x, y = kg.data.load_digits()
    return kg.data.train_test_split(x, y, test_size=0.2, seed=seed)


def digits_mlp():
    kg.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32, activation="relu"), nn.Dropout(0.1),
                         nn.Linear(32, 10))


def test_fit_learns_the_digits_and_logs_every_epoch():
    x_train, x_test, y_train, y_test = small_problem()
    model = digits_mlp()
    loader = kg.data.DataLoader(x_train, y_train, batch_size=64, shuffle=True, seed=0)
    model.compile(kg.optim.Adam(model.parameters(), lr=3e-3), nn.CrossEntropyLoss(),
                  metrics=["accuracy"])
    history = model.fit(loader, validation_data=(x_test, y_test), epochs=8, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert len(history.epoch) == len(history.epoch_times) == 8
    assert history["loss"][-1] < history["loss"][0] / 3
    assert history["val_accuracy"][-1] > 0.9
    loss, accuracy = model.evaluate(x_test, y_test)
    assert accuracy == pytest.approx(history["val_accuracy"][-1])
    assert loss == pytest.approx(history["val_loss"][-1])
    assert model.training  # evaluate() put the mode back
    assert model.predict(x_test).shape == (len(x_test), 10)


def test_fit_validation_split_holds_out_the_last_samples():
    x_train, _, y_train, _ = small_problem()
    model = digits_mlp()
    model.compile(kg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss())
    history = model.fit(x_train, y_train, batch_size=64, shuffle=False, validation_split=0.25,
                        epochs=2, verbose=0)
    val = model.evaluate(x_train[-len(x_train) // 4:], y_train[-len(x_train) // 4:])
    assert history["val_loss"][-1] == pytest.approx(val, rel=1e-5)
    with pytest.raises(ValueError, match="not both"):
        model.fit(x_train, y_train, validation_data=(x_train, y_train), validation_split=0.1)


class RecordWeights(nn.Callback):
    def __init__(self):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append({k: a.copy() for k, a in self.model.state_dict().items()})


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    """A learning rate far too high makes val_loss wander; training must stop `patience`
    epochs after the best one and end with that epoch's weights."""
    x_train, x_test, y_train, y_test = small_problem()
    model = digits_mlp()
    recorder = RecordWeights()
    stopper = nn.EarlyStopping("val_loss", patience=3)
    loader = kg.data.DataLoader(x_train, y_train, batch_size=64, shuffle=True, seed=0)
    model.compile(kg.optim.SGD(model.parameters(), lr=2.0), nn.CrossEntropyLoss())
    history = model.fit(loader, validation_data=(x_test, y_test), epochs=60,
                        callbacks=[recorder, stopper], verbose=0)
    best = int(np.argmin(history["val_loss"]))
    assert stopper.best_epoch == best and stopper.stopped_epoch == best + 3
    assert len(history.epoch) == best + 4 < 60
    for name, param in model.state_dict().items():
        np.testing.assert_array_equal(param, recorder.weights[best][name])


def test_early_stopping_restores_even_when_training_is_interrupted():
    x_train, x_test, y_train, y_test = small_problem()
    model = digits_mlp()
    recorder, stopper = RecordWeights(), nn.EarlyStopping("val_accuracy", patience=100)

    class Interrupt(nn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 4:
                raise KeyboardInterrupt

    loader = kg.data.DataLoader(x_train, y_train, batch_size=64, shuffle=True, seed=0)
    model.compile(kg.optim.SGD(model.parameters(), lr=2.0), nn.CrossEntropyLoss(),
                  metrics=["accuracy"])
    with pytest.raises(KeyboardInterrupt):
        model.fit(loader, validation_data=(x_test, y_test), epochs=50,
                  callbacks=[recorder, stopper, Interrupt()], verbose=0)
    assert stopper.mode == "max" and stopper.best_epoch <= 4
    for name, param in model.state_dict().items():
        np.testing.assert_array_equal(param, recorder.weights[stopper.best_epoch][name])


def test_early_stopping_min_delta_and_a_missing_metric():
    model = nn.Linear(2, 2)
    stopper = nn.EarlyStopping("val_loss", min_delta=0.1, patience=1, restore_best_weights=False)
    stopper.set_model(model)
    stopper.on_train_begin()
    stopper.on_epoch_end(0, {"val_loss": 1.0})
    stopper.on_epoch_end(1, {"val_loss": 0.95})  # better, but by less than min_delta
    assert model.stop_training and stopper.best == 1.0
    with pytest.raises(KeyError, match="give fit\\(\\) validation data"):
        stopper.on_epoch_end(2, {"loss": 1.0})


def test_reduce_on_plateau_as_a_callback():
    x_train, x_test, y_train, y_test = small_problem()
    model = digits_mlp()
    optimizer = kg.optim.SGD(model.parameters(), lr=2.0)
    schedule = kg.optim.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)
    model.compile(optimizer, nn.CrossEntropyLoss())
    history = model.fit(x_train, y_train, batch_size=256, validation_data=(x_test, y_test),
                        epochs=6, callbacks=[schedule], verbose=0)
    best, worse = np.inf, 0
    for value in history["val_loss"]:  # patience 0: every epoch short of a new best halves
        if value < best * (1 - 1e-4):
            best = value
        else:
            worse += 1
    assert worse > 0
    assert optimizer.param_groups[0]["lr"] == 2.0 * 0.5 ** worse


def test_perceptron_learns_the_passfail_data():
    x, y = kg.data.load_passfail(n=400, seed=0)
    kg.manual_seed(0)
    model = nn.Linear(2, 1)
    model.compile(kg.optim.Adam(model.parameters(), lr=0.05), nn.BCEWithLogitsLoss(),
                  metrics=["accuracy"])
    history = model.fit(x, y.astype(np.float32).reshape(-1, 1), batch_size=32, epochs=40,
                        verbose=0)
    assert history["accuracy"][-1] > 0.9


# ---- Keras's per-batch and weight methods ----

def _twins(seed=4):
    models = []
    for _ in range(2):
        kg.manual_seed(seed)
        model = nn.Sequential(nn.Linear(5, 16, activation="relu"), nn.Linear(16, 3))
        model.compile(kg.optim.Adam(model.parameters(), lr=0.01), nn.CrossEntropyLoss(),
                      metrics=["accuracy"])
        models.append(model)
    return models


def test_train_on_batch_is_one_eager_step():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 5)).astype(np.float32), rng.integers(0, 3, 12)
    ours, twin = _twins()
    for _ in range(3):
        loss, accuracy = ours.train_on_batch(x, y)
        optimizer, loss_fn = twin._training["optimizer"], twin._training["loss"]
        optimizer.zero_grad()
        outputs = twin(kg.tensor(x))
        expected = loss_fn(outputs, kg.tensor(y))
        expected.backward()
        optimizer.step()
        assert loss == expected.item()
        assert accuracy == np.mean(outputs.data.argmax(axis=1) == y)
    for a, b in zip(ours.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert ours.test_on_batch(x, y) == ours.evaluate(x, y)
    np.testing.assert_array_equal(ours.predict_on_batch(x), ours.predict(x))


def test_weights_come_out_as_copies_and_go_back_checked(tmp_path):
    model, other = _twins()
    model.train_on_batch(np.ones((4, 5), np.float32), np.array([0, 1, 2, 0]))
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(5, 16), (16,), (16, 3), (3,)]
    assert model.count_params() == sum(w.size for w in weights) == 147
    weights[0][...] = 7  # a copy: the model is untouched
    assert not (model.get_weights()[0] == 7).any()
    before = other.get_weights()
    with pytest.raises(ValueError, match="3 arrays for 4 parameters"):
        other.set_weights(weights[:3])
    with pytest.raises(ValueError, match=r"weight 3 has shape \(4,\)"):
        other.set_weights(weights[:3] + [np.zeros(4)])
    for a, b in zip(other.get_weights(), before):  # a refused call wrote nothing
        np.testing.assert_array_equal(a, b)
    other.set_weights(model.get_weights())
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    path = tmp_path / "model.weights.safetensors"
    model.save_weights(path)
    other.set_weights([np.zeros_like(w) for w in before])
    other.load_weights(path)
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
