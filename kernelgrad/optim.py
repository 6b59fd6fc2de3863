"""Optimizers with torch.optim's defaults and semantics; each step is one fused kernel call
per parameter group, updating the parameters and their state in place (on the GPU, one
launch per 8 parameters). Learning-rate schedules
(StepLR, ReduceLROnPlateau) can also be passed to fit() as callbacks.
"""
import math

import numpy as np

from . import kernels as K
from .kernels import checks as v
from .nn.tensor import Tensor


class Optimizer:
    """Holds param_groups (dicts with "params" and hyper-parameters) and per-param state."""

    def __init__(self, params, defaults):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups = []
        self.state = {}
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        group = {**self.defaults, **group, "params": list(group["params"])}
        for param in group["params"]:
            if not isinstance(param, Tensor) or not param.requires_grad:
                raise TypeError(f"{type(self).__name__} can only optimize Tensors that require "
                                f"grad, got {type(param).__name__}")
        self._check(group)
        self.param_groups.append(group)

    def _check(self, group):
        """Validate a group's hyper-parameters once, so a bad value fails at construction."""
        for key, value in group.items():
            if key == "lr":
                v.finite(value, "lr", 0.0)
            elif key in ("momentum", "dampening", "weight_decay", "eps", "lr_decay", "alpha"):
                v.finite(value, key, 0.0)
            elif key == "betas":
                for name, beta in zip(("beta1", "beta2"), value):
                    v.finite(beta, name, 0.0, 1.0, high_open=True)

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for param in group["params"]:
                if set_to_none or param.grad is None:
                    param.grad = None
                else:
                    param.grad[...] = 0

    def step(self):
        for group in self.param_groups:
            # one call per step count: torch counts per parameter, and one added to the
            # group later (or without a gradient for a while) is behind the others
            by_step = {}
            for param in group["params"]:
                if param.grad is not None:
                    state = self.state.setdefault(id(param), {"step": 0})
                    by_step.setdefault(state["step"] + 1, []).append(
                        (param.data, param.grad, state))
            for step, items in by_step.items():
                params, grads, states = (list(column) for column in zip(*items))
                self._update(params, grads, states, group, step)  # validates all first
                for state in states:
                    state["step"] = step

    def _update(self, params, grads, states, group, step):
        raise NotImplementedError

    @staticmethod
    def _buffers(states, name, params, fill=0.0):
        """Each parameter's state array `name`, created (filled with `fill`) on first use."""
        buffers = []
        for state, param in zip(states, params):
            buffer = state.get(name)
            if buffer is None:
                buffer = state[name] = np.full_like(param, fill)
            buffers.append(buffer)
        return buffers


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, params, grads, states, group, step):
        bufs = self._buffers(states, "momentum_buffer", params) if group["momentum"] else None
        K.sgd_step(params, grads, bufs, lr=group["lr"], momentum=group["momentum"],
                   dampening=group["dampening"], weight_decay=group["weight_decay"],
                   nesterov=group["nesterov"], step=step)


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps))

    def _update(self, params, grads, states, group, step):
        sums = self._buffers(states, "sum", params, group["initial_accumulator_value"])
        K.adagrad_step(params, grads, sums, lr=group["lr"], lr_decay=group["lr_decay"],
                       weight_decay=group["weight_decay"], eps=group["eps"], step=step)


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _update(self, params, grads, states, group, step):
        K.rmsprop_step(
            params, grads, self._buffers(states, "square_avg", params),
            grad_avg=self._buffers(states, "grad_avg", params) if group["centered"] else None,
            momentum_buf=(self._buffers(states, "momentum_buffer", params)
                          if group["momentum"] else None),
            lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
            weight_decay=group["weight_decay"], momentum=group["momentum"],
            centered=group["centered"])


class Adam(Optimizer):
    """Adam; weight_decay adds weight_decay * param to the gradient (L2), as torch.optim.Adam."""
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    def _update(self, params, grads, states, group, step):
        beta1, beta2 = group["betas"]
        K.adam_step(params, grads, self._buffers(states, "exp_avg", params),
                    self._buffers(states, "exp_avg_sq", params), lr=group["lr"], beta1=beta1,
                    beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                    step=step, decoupled_weight_decay=self.decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay: param *= 1 - lr * weight_decay before the step."""
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


# ---- learning-rate schedules ----

class StepLR:
    """lr = initial lr * gamma ** (epoch // step_size); call step() once per epoch."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"step_size must be a positive integer, got {step_size!r}")
        self.optimizer, self.step_size = optimizer, step_size
        self.gamma = v.finite(gamma, "gamma", 0.0)
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.epoch = 0

    def step(self):
        self.epoch += 1
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * self.gamma ** (self.epoch // self.step_size)

    def on_epoch_end(self, epoch, logs, model=None):
        self.step()


class ReduceLROnPlateau:
    """Multiply lr by `factor` when `monitor` has not improved for `patience` epochs.

    As torch.optim.lr_scheduler.ReduceLROnPlateau with threshold_mode="rel": an improvement
    beats the best by more than `threshold` relatively. Call step(metric) once per epoch,
    or pass it to fit() as a callback (it reads logs[monitor]).
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 cooldown=0, min_lr=0.0, monitor="val_loss"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        v.finite(factor, "factor", 0.0, 1.0, low_open=True, high_open=True)
        self.optimizer, self.mode, self.factor = optimizer, mode, factor
        self.patience, self.threshold, self.cooldown = patience, threshold, cooldown
        self.min_lr, self.monitor = v.finite(min_lr, "min_lr", 0.0), monitor
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = self.cooldown_left = 0

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

    def on_epoch_end(self, epoch, logs, model=None):
        if self.monitor not in logs:
            raise KeyError(f"ReduceLROnPlateau monitors {self.monitor!r}, which fit() did not "
                           f"log (it logged {sorted(logs)})")
        self.step(logs[self.monitor])
