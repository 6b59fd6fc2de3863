"""Callbacks for Module.fit, with Keras's signatures: each hook takes (epoch or batch,
logs=None), `self.model` is the model being trained and `self.params` what fit was asked
(epochs, steps, metrics: the names it will log), and setting `self.model.stop_training =
True` ends training after the current batch.

Every callback checks what it monitors against params["metrics"] in on_train_begin, so a
misspelt name fails before the first step. A callback that writes files (ModelCheckpoint,
CSVLogger) writes only on the process of rank 0 when training runs on several processes.
"""
import csv
import math
import os
import sys

import numpy as np

from ..kernels import checks


def _is_writer():
    from .. import distributed
    return distributed.rank() == 0


def _say(text):
    if _is_writer():
        print(text, flush=True)


class Callback:
    """Hooks fit() calls; all do nothing here."""

    model = None
    params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass


def _check_monitor(callback, monitor):
    names = callback.params.get("metrics")
    if names is not None and monitor not in names:
        raise ValueError(f"{type(callback).__name__} monitors {monitor!r}, which fit() will not "
                         f"log: it logs {sorted(names)}" + (
                             "; give fit() validation data" if monitor.startswith("val_") else ""))


def _mode_for(monitor, mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return ("max" if "acc" in monitor else "min") if mode == "auto" else mode


class History(Callback):
    """history[name]: one value per epoch (loss, accuracy, val_loss, val_accuracy);
    epoch: the epochs run; epoch_times: each epoch's training-loop seconds."""

    def __init__(self):
        self.history, self.epoch, self.epoch_times = {}, [], []

    def append(self, epoch, logs, seconds):
        self.epoch.append(epoch)
        self.epoch_times.append(seconds)
        for name, value in logs.items():
            self.history.setdefault(name, []).append(value)

    def __getitem__(self, name):
        return self.history[name]


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs.

    As Keras's, with two differences, both for the point of early stopping (keeping the
    best model): restore_best_weights defaults to True, and verbose to 1 (a line says when
    it stopped and which epoch's weights it restored). The best weights are restored when
    training ends however it ends: stopped early, out of epochs, or interrupted.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=1, mode="auto",
                 baseline=None, restore_best_weights=True):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be a non-negative integer, got {patience!r}")
        self.monitor, self.patience, self.verbose = monitor, patience, verbose
        self.min_delta = abs(checks.finite(min_delta, "min_delta"))
        self.baseline = None if baseline is None else checks.finite(baseline, "baseline")
        self.mode = _mode_for(monitor, mode)
        self.restore_best_weights = restore_best_weights
        self.best_epoch = self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        _check_monitor(self, self.monitor)
        self.best = math.inf if self.mode == "min" else -math.inf
        if self.baseline is not None:
            self.best = self.baseline
        self.best_epoch, self.best_weights, self.stopped_epoch = None, None, None
        self.wait = 0

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, which fit() did not log "
                           f"(it logged {sorted(logs)}); give fit() validation data")
        value = logs[self.monitor]
        if self._improved(value):  # a NaN never improves
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: a.copy() for k, a in self.model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training, self.stopped_epoch = True, epoch

    def on_train_end(self, logs=None):
        if self.stopped_epoch is not None and self.verbose:
            _say(f"early stopping: {self.monitor} did not improve for {self.patience} epochs; "
                 f"stopped after epoch {self.stopped_epoch + 1}")
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
            if self.verbose:
                _say(f"early stopping: restored the weights of epoch {self.best_epoch + 1} "
                     f"({self.monitor} {self.best:.4g})")


class ModelCheckpoint(Callback):
    """Save the model's state_dict (kg.save, safetensors) after each epoch, to filepath
    formatted with the epoch (from 1) and the logs: "ckpt-{epoch:02d}-{val_loss:.3f}".
    save_best_only: only when `monitor` improved."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 mode="auto"):
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only, self.mode = save_best_only, _mode_for(monitor, mode)
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_train_begin(self, logs=None):
        if self.save_best_only:
            _check_monitor(self, self.monitor)
        names = dict.fromkeys(self.params.get("metrics") or (), 0.0)
        try:
            self.filepath.format(epoch=1, **names)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"ModelCheckpoint filepath {self.filepath!r} names a value fit() "
                             f"will not log ({error})") from None
        directory = os.path.dirname(os.path.abspath(self.filepath))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"ModelCheckpoint: no directory {directory!r}")

    def on_epoch_end(self, epoch, logs=None):
        from .serialization import save
        logs = logs or {}
        if self.save_best_only:
            value = logs[self.monitor]
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if _is_writer():
            save(self.model.state_dict(), path)
            if self.verbose:
                print(f"epoch {epoch + 1}: saved {path}", flush=True)


class CSVLogger(Callback):
    """One CSV row per epoch: epoch, then every logged value."""

    def __init__(self, filename, separator=",", append=False):
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self._file = self._writer = None

    def on_train_begin(self, logs=None):
        if not _is_writer():
            return
        exists = self.append and os.path.exists(self.filename)
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer = None
        self._header_written = exists

    def on_epoch_end(self, epoch, logs=None):
        if self._file is None:
            return
        logs = logs or {}
        if self._writer is None:
            self._writer = csv.writer(self._file, delimiter=self.separator)
            if not self._header_written:
                self._writer.writerow(["epoch", *logs])
            self._keys = list(logs)
        self._writer.writerow([epoch, *(logs.get(k, "") for k in self._keys)])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class LearningRateScheduler(Callback):
    """Set every parameter group's lr to schedule(epoch, lr) at the start of each epoch
    (epoch from 0, lr the current one of the first group)."""

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError(f"schedule must be a function (epoch, lr) -> lr, got {schedule!r}")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model._training["optimizer"]
        lr = checks.finite(self.schedule(epoch, optimizer.param_groups[0]["lr"]),
                           "the schedule's learning rate", 0.0)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if self.verbose:
            _say(f"epoch {epoch + 1}: learning rate {lr:g}")


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            _say(f"batch {batch}: loss is {loss}; stopping (TerminateOnNaN)")
            self.model.stop_training = True


class ProgressBar(Callback):
    """A batch progress bar on stderr, drawn only where stderr is a terminal (tqdm)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._bar = None
        if not (sys.stderr.isatty() and _is_writer()):
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=self.params.get("steps"), leave=False, unit="batch",
                         desc=f"epoch {epoch + 1}/{self.params.get('epochs')}")

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.close()
