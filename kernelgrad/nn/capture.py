"""kernelgrad.capture: a training step recorded once and replayed without Python's
per-op cost.

    step = kg.capture(model, loss_fn, optimizer)
    for x, y in loader:
        loss, outputs = step(x, y)       # zero_grad, forward, loss, backward, optimizer step

A step of a small network is mostly Python around its kernels: building the autograd
graph, checking every argument of every op, allocating. The first call with given
shapes, dtypes and mode records the step as a plan, the kernel calls the eager step makes,
in its order, each with its arguments checked and its sizes, thread partition and
scratch fixed; later calls of the same signature replay the plan on the new batch: no
graph, no checks but the batch's own. The results are the eager step's bit for bit (the
same kernels on the same arrays in the same order, the same dropout stream), and the
model, its .grad, the optimizer's state and step counts and the library's random state end
as the eager step leaves them. One fusion the eager step cannot make: a ReLU followed by
dropout goes back in one pass from the dropout's output (no mask regenerated, a linear
layer's bias gradient summed on the way), which gives the same bits (cpu/dropout.py says
why).

What is recorded is fixed by the signature: a batch of another shape (the last, short
one) or dtype, or the model switched to eval mode, records a new plan; hyper-parameters
(the learning rate a schedule changes) are read at every call, and an optimizer whose
structure changed (momentum switched on, a parameter added) is recorded again. A model the
recorder does not know (anything but a Sequential of Linear, the activation modules,
Dropout and Identity, each parameter at one place, with a CrossEntropyLoss, MSELoss or
BCEWithLogitsLoss and one of the five optimizers) cannot be captured: supports() says
so, and fit() then runs the step eagerly. The plan's kernel calls on fixed buffers are
what a CUDA graph would hold; on the GPU the same plan could be recorded into one (not
done yet: CPU only).
"""
import numpy as np

from .. import kernels
from ..kernels.ops import activations as activation_ops
from ..kernels.ops import dropout as dropout_ops
from ..kernels.ops import matmul as matmul_ops
from ..kernels.ops import optim as optim_ops
from ..kernels.ops import softmax_cross_entropy as softmax_ops
from . import functional as F
from . import modules as m
from .random import advance_dropout_stream, dropout_stream, get_rng_state, set_rng_state
from .tensor import Tensor

ELEMENTWISE = {m.ReLU: "relu", m.Sigmoid: "sigmoid", m.Tanh: "tanh", m.GELU: "gelu",
               m.LeakyReLU: "leaky_relu"}
LOSSES = {m.CrossEntropyLoss: "cross_entropy", m.MSELoss: "mse",
          m.BCEWithLogitsLoss: "binary_cross_entropy_with_logits"}


def _layers(model):
    return list(model) if isinstance(model, m.Sequential) else [model]


def unsupported(model, loss_fn, optimizer):
    """Why this step cannot be captured, or None when it can."""
    from ..optim import SGD, Adagrad, Adam, RMSprop
    params = list(model.parameters())
    if not params:
        return "the model has no parameters"
    if any(p.device != "cpu" for p in params):
        return "capture records CPU steps (the model is on the GPU)"
    if len({p.dtype for p in params}) != 1:
        return "the parameters have several dtypes"
    for layer in _layers(model):
        if not isinstance(layer, (m.Linear, m.Dropout, m.Identity, *ELEMENTWISE)):
            return f"capture does not know the layer {type(layer).__name__}"
        if isinstance(layer, m.Linear) and not all(p.requires_grad for p in
                                                   layer.parameters()):
            return "a Linear layer with frozen parameters"
    placed = [id(p) for layer in _layers(model) for p in layer.parameters()]
    if len(placed) != len(set(placed)):
        # the recorded backward writes each layer's gradient; the eager one sums the uses
        return "a layer or parameter used at two places in the model"
    if type(loss_fn) not in LOSSES:
        return f"capture does not know the loss {type(loss_fn).__name__}"
    if getattr(loss_fn, "weight", None) is not None or getattr(loss_fn, "label_smoothing", 0):
        return "class weights or label smoothing"
    if loss_fn.reduction == "none":
        return "a loss without reduction"
    if not isinstance(optimizer, (SGD, Adagrad, RMSprop, Adam)):
        return f"capture does not know the optimizer {type(optimizer).__name__}"
    in_groups = {id(p) for g in optimizer.param_groups for p in g["params"]}
    if in_groups != {id(p) for p in params}:
        return "the optimizer does not hold exactly the model's parameters"
    return None


def supports(model, loss_fn, optimizer):
    return unsupported(model, loss_fn, optimizer) is None


class _Stage:
    """One recorded forward stage: run(h) -> output, back(g) -> gradient of the input."""


class _Linear(_Stage):
    def __init__(self, layer, x_shape, dtype, need_input_grad, impl):
        self.layer, self.name = layer, layer.activation
        self.alpha = dtype.type(layer.negative_slope)
        batch, fan_in = x_shape
        act_id = activation_ops.activation_id(self.name)
        # the plans linear() and linear_backward() build for these shapes
        self.forward_plan = matmul_ops.linear_plan(
            batch, fan_in, layer.out_features, dtype, layer.bias is not None, act_id,
            self.alpha, self.name == "gelu", impl)
        self.backward_plan = matmul_ops.linear_backward_plan(
            batch, fan_in, layer.out_features, dtype, act_id, self.alpha, need_input_grad, impl)

    def run(self, h):
        w = self.layer.weight.data
        b = None if self.layer.bias is None else self.layer.bias.data
        self.x = h
        if self.name == "gelu":
            self.y, self.z = self.forward_plan(h, w, b)
        else:
            self.y, self.z = self.forward_plan(h, w, b), None
        return self.y

    def back(self, g):
        saved = self.z if self.name == "gelu" else self.y
        dx, dw, db = self.backward_plan(g, self.x, self.layer.weight.data, saved)
        return self._grads(dx, dw, db)

    def back_through(self, dropout, g):
        """back() of this ReLU layer and of the dropout after it, g the dropout's output
        gradient: the ReLU's and the dropout's backward and the bias's column sums in
        one pass (_Dropout.relu_back), then the GEMMs."""
        dz, db = dropout.relu_back(g, self.layer.bias is not None)
        dx, dw = self.backward_plan.gemms(dz, self.x, self.layer.weight.data)
        return self._grads(dx, dw, db)

    def _grads(self, dx, dw, db):
        self.layer.weight.grad = dw
        if self.layer.bias is not None:
            self.layer.bias.grad = db
        return dx


class _Activation(_Stage):
    def __init__(self, layer, dtype):
        self.name = ELEMENTWISE[type(layer)]
        self.act = activation_ops.activation_id(self.name)
        self.alpha = dtype.type(getattr(layer, "negative_slope", 0.01))

    def run(self, h):
        self.x = h
        self.y = activation_ops.forward(h, self.act, self.alpha)
        return self.y

    def back(self, g):
        saved = self.x if self.name == "gelu" else self.y
        return activation_ops.backward(g, saved, self.act, self.alpha)

    def back_through(self, dropout, g):
        """back() of this ReLU and of the dropout after it, in one pass."""
        return dropout.relu_back(g, False)[0]


class _Dropout(_Stage):
    def __init__(self, layer, dtype):
        self.p = layer.p
        self.threshold, self.scale = dropout_ops.constants(layer.p, dtype)

    def run(self, h):
        seed, offset = dropout_stream()
        self.seed, self.offset = np.uint64(seed), np.uint64(offset)
        advance_dropout_stream()
        self.y = self._apply(h)
        return self.y

    def _apply(self, h):
        return dropout_ops.run_cpu(h, self.threshold, self.scale, self.seed, self.offset)

    def back(self, g):
        return self._apply(g)

    def relu_back(self, g, bias_sums):
        """(dz, db) before the ReLU this dropout follows: from its output, not the mask."""
        return dropout_ops.relu_dropout_backward_cpu(g, self.y, self.scale, bias_sums)


class Plan:
    """The recorded step for one signature (batch shapes and dtypes, mode, optimizer
    structure)."""

    def __init__(self, model, loss_fn, optimizer, x, y):
        dtype = next(model.parameters()).dtype
        impl = matmul_ops.resolve_impl("auto", "cpu")  # as the eager linear resolves it
        self.loss, self.reduction = LOSSES[type(loss_fn)], loss_fn.reduction
        self.stages, shape = [], x.shape
        for layer in _layers(model):
            if isinstance(layer, m.Linear):
                first = not any(isinstance(s, _Linear) for s in self.stages)
                self.stages.append(_Linear(layer, shape, dtype, not first, impl))
                shape = shape[:-1] + (layer.out_features,)
            elif isinstance(layer, m.Dropout):
                if model.training and layer.p > 0:
                    self.stages.append(_Dropout(layer, dtype))
            elif type(layer) in ELEMENTWISE:
                self.stages.append(_Activation(layer, dtype))
        self.dtype, self.classes = dtype, shape[-1]
        # every stage before the first Linear works on the batch itself, which needs no
        # gradient: the backward pass stops at the first Linear
        self.first = next(i for i, s in enumerate(self.stages) if isinstance(s, _Linear)) \
            if any(isinstance(s, _Linear) for s in self.stages) else len(self.stages)
        self.optimizer = _OptimizerPlan(optimizer, dtype)
        self.backward = _backward_steps(self.stages, self.first)

    def run(self, x, y):
        if not self.optimizer.ready():
            raise _Fallback
        if self.loss == "cross_entropy":  # the labels as the eager loss reads them
            y = F._labels(y, x.shape[0])
            if y.dtype != np.int64:
                y = y.astype(np.int64)
            # before any stage: a refused call takes no dropout offset
            softmax_ops.check_labels(y, self.classes)
        h = x
        for stage in self.stages:
            h = stage.run(h)
        outputs = h
        if self.loss == "cross_entropy":
            losses, grad = softmax_ops.run_cpu(outputs, y)
        else:
            target = F._target_like(y, outputs, "target")
            if target.dtype != outputs.dtype:
                target = target.astype(outputs.dtype)
            losses, grad = getattr(kernels, self.loss)(outputs, target)
        total = np.asarray(losses.sum(dtype=losses.dtype))
        if self.reduction == "mean":
            count = losses.dtype.type(losses.size)
            total = np.asarray(total / count)
            # the eager loss's backward: its per-element gradient times (1 / count)
            grad = grad * (np.ones((), losses.dtype) / count)
        g = grad
        for stage, dropout in self.backward:
            g = stage.back(g) if dropout is None else stage.back_through(dropout, g)
        self.optimizer.run()
        return total, outputs


def _relu(stage):
    return isinstance(stage, (_Linear, _Activation)) and stage.name == "relu"


def _backward_steps(stages, first):
    """The backward pass over stages[first:], last stage first, as (stage, dropout) pairs:
    a ReLU (layer or activation) followed by dropout goes back through both in one step
    (stage.back_through(dropout, g)); every other stage by itself (dropout None)."""
    steps, i = [], len(stages) - 1
    while i >= first:
        stage = stages[i]
        if isinstance(stage, _Dropout) and i > first and _relu(stages[i - 1]):
            steps.append((stages[i - 1], stage))
            i -= 2
        else:
            steps.append((stage, None))
            i -= 1
    return steps


class _OptimizerPlan:
    """The optimizer's update on each parameter, its kernel and state fixed at recording;
    the hyper-parameters, the step counts and the gradients are read at every call."""

    def __init__(self, optimizer, dtype):
        self.optimizer, self.dtype = optimizer, dtype
        self.kind = type(optimizer).__name__
        self.structure = _structure(optimizer)

    def ready(self):
        """Whether this update can run: each group's parameters at one step count (an
        optimizer whose parameters drifted apart runs its eager step)."""
        opt = self.optimizer
        for group in opt.param_groups:
            steps = {opt.state.get(id(p), {"step": 0})["step"] for p in group["params"]}
            if len(steps) != 1:
                return False
        return True

    def run(self):
        opt = self.optimizer
        for group in opt.param_groups:
            opt._check_group(group)
            params = group["params"]
            for param in params:  # state on the first step, as the eager step makes it
                if id(param) not in opt.state:
                    opt.state[id(param)] = {"step": 0}
            step = opt.state[id(params[0])]["step"] + 1
            states = [opt.state[id(p)] for p in params]
            datas = [p.data for p in params]
            kernel, scalars = self._kernel(group, step)
            arrays = self._arrays(group, states, datas)
            for param, state_arrays in zip(params, arrays):
                flat = [a.ravel() for a in state_arrays]
                kernel(param.data.size, param.data.ravel(), param.grad.data.ravel(), *flat,
                       *scalars)
            for state in states:
                state["step"] = step

    def _kernel(self, group, step):
        kind, dtype = self.kind, self.dtype
        if kind == "SGD":
            return optim_ops.sgd_kernel(dtype, group["lr"], group["momentum"],
                                        group["dampening"], group["weight_decay"],
                                        group["nesterov"], step)
        if kind == "Adagrad":
            return optim_ops.adagrad_kernel(dtype, group["lr"], group["lr_decay"],
                                            group["weight_decay"], group["eps"], step)
        if kind == "RMSprop":
            return optim_ops.rmsprop_kernel(dtype, group["lr"], group["alpha"], group["eps"],
                                            group["weight_decay"], group["momentum"],
                                            group["centered"])
        beta1, beta2 = group["betas"]
        return optim_ops.adam_kernel(dtype, group["lr"], beta1, beta2, group["eps"],
                                     group["weight_decay"], step, self.optimizer.decoupled)

    def _arrays(self, group, states, datas):
        """Each parameter's state arrays in the kernel's order (param itself where a state
        is not used, as the eager step passes it)."""
        opt, kind = self.optimizer, self.kind
        if kind == "SGD":
            if not group["momentum"]:
                return [(d,) for d in datas]
            return [(b,) for b in opt._buffers(states, "momentum_buffer", datas)]
        if kind == "Adagrad":
            return [(s,) for s in opt._buffers(states, "sum", datas,
                                               group["initial_accumulator_value"])]
        if kind == "RMSprop":
            squares = opt._buffers(states, "square_avg", datas)
            averages = opt._buffers(states, "grad_avg", datas) if group["centered"] else datas
            buffers = opt._buffers(states, "momentum_buffer", datas) if group["momentum"] \
                else datas
            return list(zip(squares, averages, buffers))
        return list(zip(opt._buffers(states, "exp_avg", datas),
                        opt._buffers(states, "exp_avg_sq", datas)))


class _Fallback(Exception):
    """This call must run eagerly (the plan cannot reproduce it)."""


def _structure(optimizer):
    """What a recorded optimizer update depends on beyond the values read per call."""
    keys = ("momentum", "nesterov", "centered", "dampening")
    return (type(optimizer).__name__, tuple(
        (len(g["params"]), tuple(bool(g.get(k)) for k in keys)) for g in optimizer.param_groups))


class CapturedStep:
    """step(x, y) -> (loss, outputs): one training step, recorded per signature (see the
    module docstring). Falls back to the eager step where the plan cannot reproduce it."""

    def __init__(self, model, loss_fn, optimizer):
        why = unsupported(model, loss_fn, optimizer)
        if why is not None:
            raise ValueError(f"this step cannot be captured: {why}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.plans = {}

    def eager(self, x, y):
        params = list(self.model.parameters())
        grads, rng = [p.grad for p in params], get_rng_state()
        try:
            self.optimizer.zero_grad()
            outputs = self.model(Tensor(x))
            loss = self.loss_fn(outputs, Tensor(y))
            loss.backward()
        except BaseException:  # a refused batch leaves the gradients and the stream as they were
            for p, g in zip(params, grads):
                p.grad = g
            set_rng_state(rng)
            raise
        self.optimizer.step()  # checks everything before it changes anything
        return loss.data, outputs.data

    def __call__(self, x, y):
        x = x.data if isinstance(x, Tensor) else np.asarray(x)
        y = y.data if isinstance(y, Tensor) else np.asarray(y)
        dtype = next(self.model.parameters()).dtype
        if (x.dtype != dtype or x.ndim != 2 or not x.flags.c_contiguous
                or not y.flags.c_contiguous or y.dtype.kind not in "fiu"):
            return self.eager(x, y)  # conversions and odd layouts: the eager path's
        if (self.loss_fn.__class__ is m.CrossEntropyLoss and y.dtype.kind == "f"
                and y.ndim == 2 and y.shape[1] > 1):
            return self.eager(x, y)  # class probabilities (one-hot rows): not recorded
        key = (x.shape, x.dtype, y.shape, y.dtype, self.model.training,
               _structure(self.optimizer))
        plan = self.plans.get(key)
        if plan is None:
            # the first call of a signature runs eagerly (it checks everything, and makes
            # the optimizer's state); the plan is made for the calls after it
            result = self.eager(x, y)
            self.plans[key] = Plan(self.model, self.loss_fn, self.optimizer, x, y)
            return result
        self._check_batch(x, y)
        try:
            return plan.run(x, y)
        except _Fallback:
            return self.eager(x, y)

    def _check_batch(self, x, y):
        """What a replay still checks: the batch's own values where the loss needs them."""
        if self.loss_fn.__class__ is m.CrossEntropyLoss and y.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers, got dtype {y.dtype}")


def capture(model, loss_fn, optimizer):
    """A CapturedStep: the training step of model, loss_fn and optimizer, recorded once per
    batch signature and replayed (see the module docstring)."""
    return CapturedStep(model, loss_fn, optimizer)
