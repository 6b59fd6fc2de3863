"""fit(), evaluate(), History and the callbacks (EarlyStopping; the LR schedules in optim
also work as callbacks), in the manner of Keras's model.fit."""
import math
import sys
import time

import numpy as np

from ..data import DataLoader
from .tensor import Tensor, no_grad


class History:
    """history[name] lists one value per epoch (loss, accuracy, val_loss, val_accuracy);
    epoch_times lists each epoch's training-loop seconds."""

    def __init__(self):
        self.history, self.epoch, self.epoch_times = {}, [], []

    def append(self, epoch, logs, seconds):
        self.epoch.append(epoch)
        self.epoch_times.append(seconds)
        for name, value in logs.items():
            self.history.setdefault(name, []).append(value)

    def __getitem__(self, name):
        return self.history[name]


class Callback:
    """Hooks fit() calls; set self.stop_training = True to end training after this epoch."""
    stop_training = False

    def on_train_begin(self, model):
        pass

    def on_epoch_end(self, epoch, logs, model):
        pass

    def on_train_end(self, model):
        pass


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs.

    mode "min", "max" or "auto" (max for accuracies, min otherwise). With
    restore_best_weights (the default here, unlike Keras: the point of early stopping is
    to keep the best model), the best epoch's weights are put back when training ends,
    however it ends: stopped early, out of epochs, or interrupted.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto",
                 restore_best_weights=True):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be a non-negative integer, got {patience!r}")
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, model):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.best_weights, self.stopped_epoch = None, None, None
        self.wait, self.stop_training = 0, False

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs, model):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, which fit() did not log "
                           f"(it logged {sorted(logs)}); give fit() validation data")
        value = logs[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: a.copy() for k, a in model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stop_training, self.stopped_epoch = True, epoch

    def on_train_end(self, model):
        if self.restore_best_weights and self.best_weights is not None:
            model.load_state_dict(self.best_weights)


def _correct(outputs, targets):
    """How many predictions are right: argmax for class scores with integer labels,
    the sign of a logit for 0/1 targets; None when accuracy has no meaning (regression)."""
    if targets.dtype.kind in "iu" and outputs.ndim == 2 and outputs.shape[1] > 1:
        return int(np.count_nonzero(outputs.argmax(axis=1) == targets))
    if outputs.shape == targets.shape and np.all((targets == 0) | (targets == 1)):
        return int(np.count_nonzero((outputs > 0) == (targets == 1)))
    return None


def _device_of(model):
    """Where the model's parameters live ("cpu" for a model without any)."""
    return next((param.device for param in model.parameters()), "cpu")


class _Meter:
    """Running sample-weighted loss and accuracy over an epoch."""

    def __init__(self):
        self.loss = 0.0
        self.correct = 0
        self.count = 0

    def add(self, loss, outputs, targets):
        n = len(targets)
        self.loss += loss * n
        self.count += n
        correct = _correct(outputs, targets)
        self.correct = None if correct is None or self.correct is None else self.correct + correct

    def logs(self, prefix=""):
        logs = {prefix + "loss": self.loss / self.count}
        if self.correct is not None:
            logs[prefix + "accuracy"] = self.correct / self.count
        return logs


def evaluate(model, loss_fn, x, y, batch_size=1024):
    """{"loss", "accuracy"} of the model in eval mode over (x, y), without a graph."""
    meter, was_training, device = _Meter(), model.training, _device_of(model)
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


def predict(model, x, batch_size=1024):
    """The model's outputs over x in eval mode, as one array on the model's device."""
    was_training, device = model.training, _device_of(model)
    model.eval()
    try:
        with no_grad():
            batches = DataLoader(x, batch_size=batch_size)
            return np.concatenate([model(xb.to(device)).data for (xb,) in batches])
    finally:
        model.train(was_training)


def _progress(loader, epoch, epochs, verbose):
    if verbose and sys.stderr.isatty() or verbose == 2:
        try:
            from tqdm import tqdm
            return tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, unit="batch")
        except ImportError:
            pass
    return loader


def _train_epoch(model, loss_fn, optimizer, batches):
    meter, device = _Meter(), _device_of(model)
    model.train()
    for batch in batches:
        *inputs, targets = (t.to(device) for t in batch)
        optimizer.zero_grad()
        outputs = model(*inputs)
        loss = loss_fn(outputs, targets)
        loss.backward()
        optimizer.step()
        meter.add(loss.item(), outputs.data, targets.data)
    return meter.logs()


def fit(model, loss_fn, optimizer, train_loader, val_data=None, validation_split=None,
        epochs=1, callbacks=None, verbose=1):
    """Train for up to `epochs` epochs; returns a History.

    val_data is (x, y) or None; validation_split instead holds out the last fraction of
    train_loader's samples (before shuffling, as Keras does). Each epoch logs loss and
    accuracy (and val_loss, val_accuracy with validation data); callbacks see them.
    verbose: 0 silent, 1 a line per epoch (and a batch bar on a terminal), 2 bar always.
    """
    if not isinstance(train_loader, DataLoader):
        raise TypeError(f"train_loader must be a DataLoader, got {type(train_loader).__name__}")
    if validation_split is not None:
        if val_data is not None:
            raise ValueError("give val_data or validation_split, not both")
        train_loader, val_data = train_loader.split(validation_split)
    if val_data is not None:
        val_data = tuple(a.data if isinstance(a, Tensor) else a for a in val_data)
    callbacks = list(callbacks or [])
    history = History()
    for callback in callbacks:
        getattr(callback, "on_train_begin", lambda m: None)(model)
    try:
        for epoch in range(epochs):
            start = time.perf_counter()
            logs = _train_epoch(model, loss_fn, optimizer,
                                _progress(train_loader, epoch, epochs, verbose))
            seconds = time.perf_counter() - start
            if val_data is not None:
                logs.update({"val_" + k: value for k, value in
                             evaluate(model, loss_fn, *val_data).items()})
            history.append(epoch, logs, seconds)
            if verbose:
                shown = "  ".join(f"{k} {value:.4f}" for k, value in logs.items())
                print(f"epoch {epoch + 1}/{epochs}  {shown}  ({seconds * 1e3:.0f} ms)", flush=True)
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs, model)
            if any(getattr(callback, "stop_training", False) for callback in callbacks):
                break
    finally:
        for callback in callbacks:
            getattr(callback, "on_train_end", lambda m: None)(model)
    return history
