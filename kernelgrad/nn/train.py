"""Keras-style training: Module.compile, fit, evaluate, predict and summary are these
functions (modules.py binds them as methods).

    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=64, epochs=20, validation_split=0.1,
                        callbacks=[nn.EarlyStopping(patience=5)])
    loss, accuracy = model.evaluate(x_test, y_test)

fit checks everything before the first step (the arguments, the data's shapes and types,
every callback's monitor, and one forward pass of the model and loss on a few training
and validation samples in eval mode, which changes nothing), so a mistake in any of them
costs no epoch and changes no weight. A model trained with fit is in training mode
afterwards whatever it was before; evaluate and predict put back the mode they found.
"""
import math
import time
import warnings

import numpy as np

from ..data import DataLoader
from ..devices import device_of, move
from . import callbacks as cb
from .random import derived_seed
from .tensor import Tensor, no_grad

FIT_SHUFFLE_TAG = 1

LOSSES = {"sparse_categorical_crossentropy": "CrossEntropyLoss",
          "categorical_crossentropy": "CrossEntropyLoss",  # one-hot targets
          "binary_crossentropy": "BCEWithLogitsLoss",
          "mse": "MSELoss", "mean_squared_error": "MSELoss"}
OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop",
              "adagrad": "Adagrad"}
# Keras's default learning rates for an optimizer given by name
KERAS_LR = {"adam": 1e-3, "adamw": 1e-3, "sgd": 1e-2, "rmsprop": 1e-3, "adagrad": 1e-3}
METRICS = ("accuracy", "acc")


def compile(model, optimizer="adam", loss=None, metrics=None):
    """Set what fit trains with. optimizer: an Optimizer over the model's parameters, or a
    name ("adam", "sgd", ...; Keras's default learning rate). loss: a loss module or any
    function (outputs, targets) -> loss Tensor, or a Keras name: the model's outputs are
    logits, so "sparse_categorical_crossentropy" is nn.CrossEntropyLoss (and
    "categorical_crossentropy" too, its targets one-hot rows) and
    "binary_crossentropy" nn.BCEWithLogitsLoss (Keras's from_logits=True). metrics: None
    or ["accuracy"]."""
    from .. import optim
    from . import modules
    if isinstance(optimizer, str):
        if optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose one of "
                             f"{sorted(OPTIMIZERS)} or pass an Optimizer")
        optimizer = getattr(optim, OPTIMIZERS[optimizer.lower()])(
            model.parameters(), lr=KERAS_LR[optimizer.lower()])
    elif not isinstance(optimizer, optim.Optimizer):
        raise TypeError(f"optimizer must be an Optimizer or a name, got {optimizer!r}")
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)} or pass "
                             "a loss module")
        loss = getattr(modules, LOSSES[loss])()
    elif not callable(loss):
        raise TypeError(f"loss must be a loss module, a function or a name, got {loss!r}")
    metrics = list(metrics or [])
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}: kernelgrad computes 'accuracy'")
    object.__setattr__(model, "_training", {"optimizer": optimizer, "loss": loss,
                                            "accuracy": bool(metrics)})


def _config(model):
    config = getattr(model, "_training", None)
    if config is None:
        raise RuntimeError(f"{type(model).__name__} is not compiled: call model.compile("
                           "optimizer=..., loss=...) before fit or evaluate")
    return config


def _device_of(model):
    """Where the model's parameters live ("cpu" for a model without any)."""
    return next((param.device for param in model.parameters()), "cpu")


def _dtype_of(model):
    return next((param.dtype for param in model.parameters()), np.dtype(np.float32))


_warned_conversion = set()


def _inputs(x, model, name):
    """x as an array the model takes: its parameters' float dtype (a float64 array given to
    a float32 model is converted, with one warning per process), on its device."""
    x = x.data if isinstance(x, Tensor) else x
    x = x if device_of(x) == "cuda" else np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{name} is 0-d: fit, evaluate and predict take a batch of samples")
    dtype = _dtype_of(model)
    if x.dtype.kind in "fiub" and x.dtype != dtype:
        if x.dtype.kind == "f" and (x.dtype, dtype) not in _warned_conversion:
            _warned_conversion.add((x.dtype, dtype))
            warnings.warn(f"{name} is {x.dtype} and the model {dtype}: converting it (once per "
                          f"array; pass {name}.astype(np.{dtype.name}) to skip this)",
                          stacklevel=4)
        x = x.astype(dtype)
    elif x.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got dtype {x.dtype}")
    return move(x, _device_of(model))


def _targets(y, name):
    y = y.data if isinstance(y, Tensor) else y
    y = y if device_of(y) == "cuda" else np.asarray(y)
    if y.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got dtype {y.dtype}")
    return y


def _loader(x, y, batch_size, shuffle, model, name="x"):
    if isinstance(x, DataLoader):
        if y is not None:
            raise ValueError("fit got a DataLoader as x: its batches hold the targets, so y "
                             "must be None")
        return x
    if y is None:
        raise ValueError(f"{name} needs its targets: fit(x, y, ...)")
    x, y = _inputs(x, model, name), _targets(y, "y")
    if len(x) != len(y):
        raise ValueError(f"{name} has {len(x)} samples but y has {len(y)}")
    # the shuffle's seed comes from the library seed alone (no draw): epoch e's order is
    # the same whether training runs straight or resumes at e (initial_epoch)
    return DataLoader(x, y, batch_size=batch_size or 32, shuffle=shuffle,
                      seed=derived_seed(FIT_SHUFFLE_TAG))


def _correct(outputs, targets, threshold=0.0, categorical=False):
    """How many predictions are right: argmax for class scores with integer labels (or,
    for a cross-entropy loss, one-hot or probability rows), an output above threshold
    for 0/1 targets (a logit's sign; 0.5 for probabilities); None when accuracy has no
    meaning (regression)."""
    if targets.dtype.kind in "iu" and outputs.ndim == 2 and outputs.shape[1] > 1:
        return int((outputs.argmax(axis=1) == targets.reshape(-1)).sum())
    if categorical and outputs.ndim == 2 and targets.shape == outputs.shape:
        return int((outputs.argmax(axis=1) == targets.argmax(axis=1)).sum())
    if outputs.size == targets.size and bool(((targets == 0) | (targets == 1)).all()):
        return int(((outputs.reshape(-1) > threshold) == (targets.reshape(-1) == 1)).sum())
    return None


class _Meter:
    """Running sample-weighted loss and accuracy over an epoch."""

    def __init__(self, accuracy, loss_fn=None):
        self.loss, self.correct, self.count = 0.0, 0 if accuracy else None, 0
        from .modules import BCELoss, CrossEntropyLoss  # (modules imports this module)
        # BCELoss is given probabilities, every other binary loss logits
        self.threshold = 0.5 if isinstance(loss_fn, BCELoss) else 0.0
        self.categorical = isinstance(loss_fn, CrossEntropyLoss)

    def add(self, loss, outputs, targets):
        n = len(targets)
        self.loss += loss * n
        self.count += n
        if self.correct is not None:
            correct = _correct(outputs, targets, self.threshold, self.categorical)
            self.correct = None if correct is None else self.correct + correct

    def logs(self, prefix=""):
        from .. import distributed
        totals = distributed.sum_floats([self.loss, self.count,
                                         -1.0 if self.correct is None else self.correct])
        logs = {prefix + "loss": totals[0] / totals[1]}
        if self.correct is not None:
            logs[prefix + "accuracy"] = totals[2] / totals[1]
        return logs


def _weighted_loss(loss_fn, class_weight):
    """loss_fn with each sample's loss times its class's weight (Keras: the mean over the
    batch of weight x loss)."""
    from .modules import CrossEntropyLoss, _Loss
    if not isinstance(loss_fn, _Loss):
        raise TypeError("class_weight needs one of kernelgrad's loss modules (they can give "
                        "per-sample losses)")
    per_sample = type(loss_fn)(reduction="none")

    def weighted(outputs, targets):
        labels = targets.data if isinstance(targets, Tensor) else targets
        labels = labels.reshape(len(labels), -1)
        # one-hot rows (Keras's categorical targets) weigh by their class, as Keras does
        labels = labels.argmax(axis=1) if labels.shape[1] > 1 and isinstance(
            loss_fn, CrossEntropyLoss) else labels[:, 0]
        weights = np.array([class_weight.get(int(c), 1.0) for c in move(labels, "cpu")],
                           dtype=outputs.dtype)
        losses = per_sample(outputs, targets)
        losses = losses.reshape(len(weights), -1).mean(axis=1) if losses.ndim > 1 else losses
        return (losses * move(weights, outputs.device)).mean()
    return weighted


def _dry_run(model, loss_fn, arrays, what):
    """One forward pass and loss on a few samples, in eval mode and without a graph: shape
    and type errors surface before training, and nothing changes (no dropout is drawn)."""
    *inputs, targets = (move(a[:2], _device_of(model)) for a in arrays)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            outputs = model(*(Tensor(a) for a in inputs))
            loss_fn(outputs, Tensor(targets))
    except (ValueError, TypeError) as error:
        raise type(error)(f"fit: the model and loss fail on the {what} data: {error}") \
            from None
    finally:
        model.train(was_training)


def fit(model, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
        validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
        initial_epoch=0, capture=True):
    """Train for epochs initial_epoch .. epochs - 1; returns the History.

    x, y: arrays (NumPy, CuPy, Tensors or lists), or x a DataLoader (y None). batch_size
    (default 32) and shuffle apply to arrays. validation_split holds out the last fraction
    of the samples before shuffling, as Keras does; validation_data is (x_val, y_val).
    class_weight: {class: weight}. verbose: 0 silent, 1 a line per epoch (and a batch bar
    where stderr is a terminal). Each epoch logs loss (and accuracy when compiled with it),
    val_ too with validation data; callbacks see them. capture: record the training step
    once per batch shape and replay it (kernelgrad.capture; the same results bit for bit,
    less Python per step); models it does not know train eagerly either way.
    """
    from .. import distributed
    from .capture import CapturedStep, supports
    config = _config(model)
    optimizer, loss_fn = config["optimizer"], config["loss"]
    for name, value, low in (("epochs", epochs, 1), ("initial_epoch", initial_epoch, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if initial_epoch >= epochs:
        raise ValueError(f"initial_epoch {initial_epoch} leaves no epoch to train before "
                         f"epochs={epochs}")
    if not (isinstance(validation_split, (int, float)) and 0 <= validation_split < 1):
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
    if validation_split and validation_data is not None:
        raise ValueError("give validation_data or validation_split, not both")
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError(f"class_weight is a dict {{class: weight}}, got {class_weight!r}")
        loss_fn = _weighted_loss(loss_fn, class_weight)
    loader = _loader(x, y, batch_size, shuffle, model)
    if isinstance(x, DataLoader) and batch_size is not None:
        raise ValueError("batch_size is the DataLoader's when x is one")
    if validation_split:
        loader, validation_data = loader.split(validation_split)
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data is a pair (x_val, y_val)")
        val = (_inputs(validation_data[0], model, "validation x"),
               _targets(validation_data[1], "validation y"))
        if len(val[0]) != len(val[1]) or len(val[0]) == 0:
            raise ValueError(f"validation data has {len(val[0])} inputs and {len(val[1])} "
                             "targets")
    replica = _replica(model)  # under mpiexec: joins the job, so the loader is sharded
    loader = distributed.shard_loader(loader)
    _dry_run(model, loss_fn, loader.arrays, "training")
    if val is not None:
        _dry_run(model, loss_fn, val, "validation")
    names = ["loss"] + (["accuracy"] if config["accuracy"] else [])
    names += ["val_" + n for n in names] if val is not None else []
    history = cb.History()
    callbacks = [history] + list(callbacks or []) + ([cb.ProgressBar()] if verbose else [])
    params = {"epochs": epochs, "steps": len(loader), "metrics": names, "verbose": verbose}
    object.__setattr__(model, "stop_training", False)
    for callback in callbacks:  # the schedules of kernelgrad.optim are callbacks too
        if hasattr(callback, "set_model"):
            callback.set_model(model)
            callback.set_params(params)
    step = None
    if replica is model and capture and _device_of(model) == "cpu" and \
            supports(model, loss_fn, optimizer):
        step = CapturedStep(model, loss_fn, optimizer)
    _call(callbacks, "on_train_begin")
    try:
        for epoch in range(initial_epoch, epochs):
            _call(callbacks, "on_epoch_begin", epoch)
            loader.set_epoch(epoch)  # epoch e's order, whether run straight or resumed
            start = time.perf_counter()
            logs = _train_epoch(model, loss_fn, optimizer, loader, callbacks, config, step,
                                replica)
            seconds = time.perf_counter() - start
            if val is not None:
                logs.update({"val_" + k: v for k, v in
                             _evaluate(model, loss_fn, *val, 1024, config).items()})
            history.append(epoch, logs, seconds)
            if verbose and distributed.rank() == 0:
                shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items())
                print(f"epoch {epoch + 1}/{epochs}  {shown}  ({seconds * 1e3:.0f} ms)",
                      flush=True)
                if not math.isfinite(logs["loss"]):
                    print(f"warning: the training loss is {logs['loss']} (pass "
                          "nn.TerminateOnNaN() to stop at the first such batch)", flush=True)
            _call(callbacks, "on_epoch_end", epoch, logs)
            if model.stop_training:
                break
    finally:
        _call(callbacks, "on_train_end")
    return history


def _call(callbacks, hook, *args):
    """Each callback's `hook`, where it has one."""
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if method is not None:
            method(*args)


def _replica(model):
    """What fit runs forward through: the model, or under an MPI launcher with several
    processes, the model wrapped in DataParallel (gradients averaged across the ranks)."""
    from .. import distributed
    if distributed.launched_size() > 1 and not distributed.is_initialized():
        distributed.init(device=_device_of(model))
    if distributed.world_size() == 1 or isinstance(model, distributed.DataParallel):
        return model
    return distributed.DataParallel(model)


def _train_epoch(model, loss_fn, optimizer, batches, callbacks, config, step=None,
                 replica=None):
    meter, device = _Meter(config["accuracy"], config["loss"]), _device_of(model)
    replica = model if replica is None else replica
    model.train()
    for index, batch in enumerate(batches):
        _call(callbacks, "on_train_batch_begin", index)
        *inputs, targets = (t.to(device) for t in batch)
        if step is not None and len(inputs) == 1:
            loss, outputs = step(inputs[0].data, targets.data)
            value = float(loss)
        else:
            value, outputs = _eager_step(replica, loss_fn, optimizer, inputs, targets)
        meter.add(value, outputs, targets.data)
        _call(callbacks, "on_train_batch_end", index, {"loss": value})
        if model.stop_training:
            break
    return meter.logs()


def _eager_step(model, loss_fn, optimizer, inputs, targets):
    """One optimizer step through autograd: (the loss's value, the outputs' array)."""
    optimizer.zero_grad()
    outputs = model(*inputs)
    loss = loss_fn(outputs, targets)
    loss.backward()
    optimizer.step()
    return loss.item(), outputs.data


def _evaluate(model, loss_fn, x, y, batch_size, config):
    meter, was_training = _Meter(config["accuracy"], config["loss"]), model.training
    device = _device_of(model)
    model.eval()
    try:
        with no_grad():
            for xb, yb in DataLoader(x, y, batch_size=batch_size):
                xb, yb = xb.to(device), yb.to(device)
                outputs = model(xb)
                meter.add(loss_fn(outputs, yb).item(), outputs.data, yb.data)
    finally:
        model.train(was_training)
    return meter.logs()


def evaluate(model, x, y, batch_size=None, verbose=0, return_dict=False):
    """The compiled loss (and accuracy) over (x, y) in eval mode: the loss, or [loss,
    accuracy] when compiled with it, or a dict with return_dict, as Keras returns them."""
    config = _config(model)
    logs = _evaluate(model, config["loss"], _inputs(x, model, "x"), _targets(y, "y"),
                     batch_size or 1024, config)
    if verbose:
        print("  ".join(f"{k} {v:.4f}" for k, v in logs.items()))
    if return_dict:
        return logs
    return _result(logs)


def _result(logs):
    """Keras's return value: the loss, or [loss, accuracy]."""
    return logs["loss"] if len(logs) == 1 else list(logs.values())


def train_on_batch(model, x, y):
    """One optimizer step on the batch (x, y), as Keras's: the loss (and accuracy) of the
    outputs the step computed its gradients from."""
    config = _config(model)
    x, y = _inputs(x, model, "x"), _targets(y, "y")
    device = _device_of(model)
    xb, yb = Tensor(move(x, device)), Tensor(move(y, device))
    meter = _Meter(config["accuracy"], config["loss"])
    model.train()
    value, outputs = _eager_step(model, config["loss"], config["optimizer"], (xb,), yb)
    meter.add(value, outputs, yb.data)
    return _result(meter.logs())


def test_on_batch(model, x, y):
    """The loss (and accuracy) on one batch in eval mode, without a step."""
    config = _config(model)
    x, y = _inputs(x, model, "x"), _targets(y, "y")
    return _result(_evaluate(model, config["loss"], x, y, len(x), config))


def predict_on_batch(model, x):
    return predict(model, x, batch_size=len(x))


def get_weights(model):
    """Copies of the parameters as NumPy arrays, in parameters() order (a Linear's weight
    (in, out) then bias, Keras's layout)."""
    return [np.array(move(p.data, "cpu"), copy=True) for p in model.parameters()]


def set_weights(model, weights):
    """Copy arrays into the parameters in parameters() order; every one is checked (count,
    then as load_state_dict checks a value) before any is written."""
    from .modules import _loadable
    params, weights = list(model.parameters()), list(weights)
    if len(weights) != len(params):
        raise ValueError(f"set_weights got {len(weights)} arrays for {len(params)} parameters")
    values = [_loadable(value, f"weight {i}", param)
              for i, (param, value) in enumerate(zip(params, weights))]
    for param, value in zip(params, values):
        param.data[...] = value


def count_params(model):
    return sum(p.data.size for p in model.parameters())


def predict(model, x, batch_size=None, verbose=0):
    """The model's outputs over x in eval mode, as one array on the model's device."""
    x = _inputs(x, model, "x")
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            outputs = [model(xb).data for (xb,) in DataLoader(x, batch_size=batch_size or 1024)]
    finally:
        model.train(was_training)
    xp = np if device_of(outputs[0]) == "cpu" else __import__("cupy")
    return xp.concatenate(outputs)


def summary(model, print_fn=print):
    """A table of the model's layers, their parameter counts and the total, as Keras's."""
    rows = [(name or "(model)", type(module).__name__,
             sum(p.data.size for p in module._parameters.values()))
            for name, module in model.named_modules()]
    width = max(len(name) for name, _, _ in rows) + 2
    lines = [f"{'layer':<{width}}{'type':<20}{'parameters':>12}", "-" * (width + 32)]
    lines += [f"{name:<{width}}{kind:<20}{count:>12,}" for name, kind, count in rows]
    total = count_params(model)
    trainable = sum(p.data.size for p in model.parameters() if p.requires_grad)
    lines += ["-" * (width + 32), f"total parameters: {total:,} ({trainable:,} trainable)"]
    print_fn("\n".join(lines))
