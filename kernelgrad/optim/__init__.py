"""Optimizers and learning-rate schedules with torch.optim's defaults, semantics and state
dicts. Each step is one fused kernel call per group of parameters, updating parameters and
their state in place (on the GPU, one launch per 8 parameters).

A step is all or nothing: every group's update is checked (gradients, state, hyper-
parameters in the parameters' dtype) before any parameter moves, state created on the first
step is kept only once the whole step ran, and each parameter's step count advances then.
"""
import numbers

import numpy as np

from ..kernels import checks
from ..kernels.ops import optim as steps
from ..nn.tensor import Tensor, enable_grad
from . import lr_scheduler
from .lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    MultiStepLR,
    ReduceLROnPlateau,
    StepLR,
)

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "lr_scheduler",
           "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR",
           "ReduceLROnPlateau"]


class Optimizer:
    """Holds param_groups (dicts with "params" and hyper-parameters) and per-param state."""

    def __init__(self, params, defaults):
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__} takes an iterable of Tensors (e.g. "
                            "model.parameters()), got one Tensor")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self._check_group(defaults)
        self.defaults = defaults
        self.param_groups = []
        self.state = {}
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"a parameter group is a dict with 'params', got {group!r}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise ValueError(f"{type(self).__name__} has no hyper-parameter {sorted(unknown)}; "
                             f"it takes {sorted(self.defaults)}")
        group = {**self.defaults, **group, "params": params}
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for param in params:
            if not isinstance(param, Tensor) or not param.requires_grad:
                raise TypeError(f"{type(self).__name__} can only optimize Tensors that require "
                                f"grad, got {type(param).__name__}")
            if param.data.dtype.kind != "f":
                raise TypeError(f"{type(self).__name__} optimizes float parameters, got "
                                f"{param.data.dtype}")
            if id(param) in seen:
                raise ValueError("a parameter appears twice in the optimizer's groups")
            seen.add(id(param))
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group):
        """A group's hyper-parameters, checked when the group is made (and again, in the
        parameters' dtype, by every step)."""
        for key, value in group.items():
            if key in ("lr", "weight_decay", "eps", "lr_decay", "momentum"):
                checks.finite(value, key, 0.0)
            elif key in ("dampening", "alpha"):
                checks.finite(value, key, 0.0, 1.0)
            elif key == "initial_accumulator_value":
                checks.finite(value, key, 0.0)
            elif key == "betas":
                if not isinstance(value, (tuple, list)) or len(value) != 2:
                    raise ValueError(f"betas must be a pair (beta1, beta2), got {value!r}")
                for name, beta in zip(("beta1", "beta2"), value):
                    checks.finite(beta, name, 0.0, 1.0, high_open=True)
            elif key in ("nesterov", "centered") and not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{key} must be True or False, got {value!r}")

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for param in group["params"]:
                if set_to_none or param.grad is None:
                    param.grad = None
                else:
                    param.grad[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient; with `closure` (a function that
        recomputes the loss, as torch's optimizers take), call it first and return its loss.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        prepared, new_state = [], {}
        for group in self.param_groups:
            self._check_group(group)
            # one call per step count: torch counts per parameter, and one added to the
            # group later (or without a gradient for a while) is behind the others
            by_step = {}
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state.get(id(param))
                if state is None:  # kept only once the whole step has run
                    state = new_state[id(param)] = {"step": 0}
                by_step.setdefault(state["step"] + 1, []).append((param, state))
            for step, items in by_step.items():
                params = [p.data for p, _ in items]
                grads = [_grad_of(p) for p, _ in items]
                states = [s for _, s in items]
                prepared.append((self._prepare(params, grads, states, group, step), states,
                                 step))
        for update, states, step in prepared:
            update.run()
            for state in states:
                state["step"] = step
        self.state.update(new_state)
        return loss

    def _prepare(self, params, grads, states, group, step):
        raise NotImplementedError

    @staticmethod
    def _buffers(states, name, params, fill=0.0):
        """Each parameter's state array `name`, created (filled with `fill`) on first use."""
        buffers = []
        for state, param in zip(states, params):
            buffer = state.get(name)
            if buffer is None:
                buffer = state[name] = np.full_like(param, fill) if isinstance(
                    param, np.ndarray) else _full_like(param, fill)
            buffers.append(buffer)
        return buffers

    # ---- state ----
    def state_dict(self):
        """{"state": {index: {"step": n, name: array}}, "param_groups": [{..., "params":
        [indices]}]}: PyTorch's layout, parameters numbered in group order. The arrays are
        the live state (copy them, or kg.save, to keep a snapshot)."""
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for param in group["params"]:
                index[id(param)] = len(index)
                ids.append(index[id(param)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[key]: dict(value) for key, value in self.state.items() if key in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a state_dict() of an optimizer of the same type over parameters of the
        same shapes, in the same order. Everything is checked before anything changes."""
        try:
            groups, saved = state_dict["param_groups"], state_dict["state"]
        except (TypeError, KeyError):
            raise ValueError("an optimizer state dict has 'state' and 'param_groups'") from None
        if len(groups) != len(self.param_groups):
            raise ValueError(f"the state dict has {len(groups)} parameter groups, this "
                             f"optimizer {len(self.param_groups)}")
        params, new_groups = [], []
        for mine, theirs in zip(self.param_groups, groups):
            ids = list(theirs.get("params", []))
            if len(ids) != len(mine["params"]):
                raise ValueError(f"a group of the state dict has {len(ids)} parameters, this "
                                 f"optimizer's has {len(mine['params'])}")
            hyper = {k: v for k, v in theirs.items() if k != "params"}
            unknown = set(hyper) - set(self.defaults) - {"initial_lr"}
            if unknown:
                raise ValueError(f"the state dict's group has {sorted(unknown)}, which "
                                 f"{type(self).__name__} does not take")
            new = {**mine, **hyper, "params": mine["params"]}
            self._check_group(new)
            new_groups.append(new)
            params += list(zip(ids, mine["params"]))
        new_state = {}
        for key, param in params:
            entry = saved.get(key, saved.get(str(key)))
            if entry is None:
                continue
            new_state[id(param)] = _checked_state(entry, param, key)
        for group, new in zip(self.param_groups, new_groups):
            group.clear()
            group.update(new)
        self.state = new_state


def _grad_of(param):
    grad = param.grad
    return grad.data if isinstance(grad, Tensor) else grad


def _full_like(array, fill):
    from ..devices import xp_of
    return xp_of(array).full_like(array, fill)


def _checked_state(entry, param, key):
    """A copy of one parameter's saved state, arrays on the parameter's device and dtype."""
    from ..devices import move
    if not isinstance(entry, dict):
        raise ValueError(f"state[{key}] must be a dict, got {type(entry).__name__}")
    state = {}
    for name, value in entry.items():
        if name == "step":
            step = value.item() if hasattr(value, "item") else value
            if isinstance(step, bool) or not isinstance(step, numbers.Number) \
                    or step != int(step) or step < 0:
                raise ValueError(f"state[{key}]['step'] must be a count, got {value!r}")
            state["step"] = int(step)
            continue
        array = np.asarray(value.data if isinstance(value, Tensor) else value) \
            if not hasattr(value, "__cuda_array_interface__") else value
        if array.dtype.kind not in "fiu" or array.shape != param.shape:
            raise ValueError(f"state[{key}][{name!r}] has shape {array.shape} and dtype "
                             f"{array.dtype}; the parameter is {param.shape} {param.dtype}")
        state[name] = move(array, param.device).astype(param.dtype, copy=True)
    state.setdefault("step", 0)
    return state


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _prepare(self, params, grads, states, group, step):
        bufs = self._buffers(states, "momentum_buffer", params) if group["momentum"] else None
        return steps.prepare_sgd(params, grads, bufs, lr=group["lr"],
                                 momentum=group["momentum"], dampening=group["dampening"],
                                 weight_decay=group["weight_decay"],
                                 nesterov=group["nesterov"], step=step)


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps))

    def _prepare(self, params, grads, states, group, step):
        sums = self._buffers(states, "sum", params, group["initial_accumulator_value"])
        return steps.prepare_adagrad(params, grads, sums, lr=group["lr"],
                                     lr_decay=group["lr_decay"],
                                     weight_decay=group["weight_decay"], eps=group["eps"],
                                     step=step)


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _prepare(self, params, grads, states, group, step):
        return steps.prepare_rmsprop(
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
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _prepare(self, params, grads, states, group, step):
        beta1, beta2 = group["betas"]
        return steps.prepare_adam(params, grads, self._buffers(states, "exp_avg", params),
                                  self._buffers(states, "exp_avg_sq", params), lr=group["lr"],
                                  beta1=beta1, beta2=beta2, eps=group["eps"],
                                  weight_decay=group["weight_decay"], step=step,
                                  decoupled_weight_decay=self.decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay: param *= 1 - lr * weight_decay before the step."""
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
