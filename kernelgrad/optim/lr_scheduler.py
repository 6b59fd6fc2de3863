"""Learning-rate schedules, as torch.optim.lr_scheduler's (also kernelgrad.optim.StepLR
and the like); each is also a callback for Module.fit, stepping once per epoch."""
import bisect
import math

from ..kernels import checks

__all__ = ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR",
           "ReduceLROnPlateau"]


class _Schedule:
    """A schedule over epochs, as torch.optim.lr_scheduler's: made after the optimizer
    (it records each group's initial lr), step() once per epoch, get_last_lr(); its state
    dict holds everything but the optimizer. Also a fit() callback (steps per epoch)."""

    def __init__(self, optimizer):
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"{type(self).__name__} schedules an Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def lr_at(self, base, epoch):
        raise NotImplementedError

    def step(self):
        self.last_epoch += 1
        self._set(self.last_epoch)

    def _set(self, epoch):
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(base, epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        return list(self._last_lr)

    def state_dict(self):
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        mine = self.state_dict()
        missing = set(mine) - set(state_dict)
        if missing:
            raise ValueError(f"{type(self).__name__}.load_state_dict: missing {sorted(missing)}")
        for key in mine:
            setattr(self, key, state_dict[key])

    def on_epoch_end(self, epoch, logs=None):
        self.step()


class StepLR(_Schedule):
    """lr = initial lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"step_size must be a positive integer, got {step_size!r}")
        self.step_size = step_size
        self.gamma = checks.finite(gamma, "gamma", 0.0)
        super().__init__(optimizer)

    def lr_at(self, base, epoch):
        return base * self.gamma ** (epoch // self.step_size)


class MultiStepLR(_Schedule):
    """lr = initial lr * gamma ** (the number of milestones reached by this epoch)."""

    def __init__(self, optimizer, milestones, gamma=0.1):
        milestones = list(milestones)
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 0 for m in milestones):
            raise ValueError(f"milestones must be non-negative integers, got {milestones!r}")
        self.milestones = sorted(milestones)
        self.gamma = checks.finite(gamma, "gamma", 0.0)
        super().__init__(optimizer)
        if 0 in self.milestones:  # torch applies a milestone at 0 when it is made
            self._set(0)

    def lr_at(self, base, epoch):
        return base * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class LambdaLR(_Schedule):
    """lr = initial lr * lr_lambda(epoch): one function, or one per parameter group. Its
    state dict leaves the functions out (as torch's does for plain functions): a resumed
    run makes the schedule with the same functions, then loads the epoch."""

    def __init__(self, optimizer, lr_lambda):
        groups = len(getattr(optimizer, "param_groups", []))
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else \
            [lr_lambda] * groups
        if len(lambdas) != groups or not all(callable(f) for f in lambdas):
            raise ValueError(f"lr_lambda must be a function or a list of {groups} functions "
                             "(one per parameter group)")
        self.lr_lambdas = lambdas
        super().__init__(optimizer)
        self._set(0)  # lr = initial lr * lr_lambda(0) from the start, as torch's

    def _set(self, epoch):
        for group, base, fn in zip(self.optimizer.param_groups, self.base_lrs, self.lr_lambdas):
            group["lr"] = base * fn(epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}


class ExponentialLR(_Schedule):
    """lr = initial lr * gamma ** epoch."""

    def __init__(self, optimizer, gamma):
        self.gamma = checks.finite(gamma, "gamma", 0.0)
        super().__init__(optimizer)

    def lr_at(self, base, epoch):
        return base * self.gamma ** epoch


class CosineAnnealingLR(_Schedule):
    """lr = eta_min + (initial lr - eta_min) (1 + cos(pi epoch / T_max)) / 2: half a cosine
    from the initial lr down to eta_min over T_max epochs (torch's closed form)."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"T_max must be a positive integer, got {T_max!r}")
        self.T_max, self.eta_min = T_max, checks.finite(eta_min, "eta_min", 0.0)
        super().__init__(optimizer)

    def lr_at(self, base, epoch):
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * epoch
                                                                    / self.T_max)) / 2


class ReduceLROnPlateau:
    """Multiply lr by `factor` when `monitor` has not improved for `patience` epochs.

    As torch.optim.lr_scheduler.ReduceLROnPlateau with threshold_mode="rel": an improvement
    beats the best by more than `threshold` relatively. Call step(metric) once per epoch,
    or pass it to fit() as a callback (it reads logs[monitor]).
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 cooldown=0, min_lr=0.0, monitor="val_loss"):
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"ReduceLROnPlateau schedules an Optimizer, got "
                            f"{type(optimizer).__name__}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        checks.finite(factor, "factor", 0.0, 1.0, low_open=True, high_open=True)
        self.optimizer, self.mode, self.factor = optimizer, mode, factor
        self.patience, self.cooldown = patience, cooldown
        self.threshold = checks.finite(threshold, "threshold", 0.0)
        self.min_lr, self.monitor = checks.finite(min_lr, "min_lr", 0.0), monitor
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = self.cooldown_left = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best * (1 - self.threshold)
        return value > self.best * (1 + self.threshold)

    def step(self, metric):
        metric = float(metric)
        if self._improved(metric):
            self.best, self.bad_epochs = metric, 0
        else:
            self.bad_epochs += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad_epochs = 0
        if self.bad_epochs > self.patience:
            for group in self.optimizer.param_groups:
                group["lr"] = max(group["lr"] * self.factor, self.min_lr)
            self.cooldown_left, self.bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        return list(self._last_lr)

    state_dict = _Schedule.state_dict
    load_state_dict = _Schedule.load_state_dict

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(f"ReduceLROnPlateau monitors {self.monitor!r}, which fit() did not "
                           f"log (it logged {sorted(logs)})")
        self.step(logs[self.monitor])

