"""Module, Parameter and the layers: Linear, the activations, Dropout, Sequential, losses.

As in PyTorch: assigning a Parameter or a Module to an attribute registers it; calling a
module runs `forward`; `train()`/`eval()` switch dropout; `state_dict()` maps dotted
names to arrays. Linear's weight is (in_features, out_features), as in y = x W + b.
"""
import math
from collections import OrderedDict

import numpy as np

from ..devices import device_of, move
from ..kernels import ACTIVATIONS, checks
from ..kernels.checks import probability
from . import functional as F
from .random import init_generator
from .tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates; requires_grad by default."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 "before assigning attributes")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name, value):
        """Set `name` to a Parameter, or to None (e.g. a Linear without bias)."""
        if value is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, value)

    def add_module(self, name, module):
        """Register a submodule under `name` (setattr, with torch's checks of the name)."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"a module name is a non-empty string without dots, got {name!r}")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module")
        setattr(self, name, module)

    register_module = add_module

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- traversal ----
    def named_modules(self, prefix="", remove_duplicate=True, _seen=None):
        """(dotted name, module) for this module ("") and every submodule, depth first; a
        module reached twice (one layer used at two places) is given once, under its first
        name, unless remove_duplicate is False (as PyTorch's)."""
        if remove_duplicate:
            _seen = set() if _seen is None else _seen
            if id(self) in _seen:
                return
            _seen.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name,
                                            remove_duplicate, _seen)

    def modules(self):
        return (module for _, module in self.named_modules())

    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, parameter) pairs; a parameter shared by two places is given once
        (what an optimizer must hold) unless remove_duplicate is False (what state_dict
        lists: one key per place, as PyTorch's); recurse=False: this module's own only."""
        modules = self.named_modules(prefix, remove_duplicate) if recurse else [(prefix, self)]
        seen = set()
        for module_prefix, module in modules:
            for name, param in module._parameters.items():
                if remove_duplicate:
                    if id(param) in seen:
                        continue
                    seen.add(id(param))
                yield (f"{module_prefix}.{name}" if module_prefix else name), param

    def parameters(self, recurse=True):
        return (param for _, param in self.named_parameters(recurse=recurse))

    # ---- modes and gradients ----
    def train(self, mode=True):
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad.data[...] = 0

    def requires_grad_(self, requires_grad=True):
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def apply(self, fn):
        """fn(module) for every submodule, then this one (e.g. a custom initializer)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, target):
        """Move every parameter to a device ("cpu", "cuda", "auto") or cast it to a dtype, in
        place (an optimizer made before keeps working on them); returns self."""
        for param in self.parameters():
            moved = param.to(target) if isinstance(target, str) else None
            if moved is not None:
                param.data = moved.data
            else:
                param.data = param.data.astype(float_dtype(target))
                if param.grad is not None:
                    param.grad = param.grad.data.astype(param.data.dtype)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    # ---- state ----
    def state_dict(self, layout="kernelgrad"):
        """An ordered mapping of dotted parameter names to their arrays (not copies). With
        layout="torch", each Linear weight is given as PyTorch stores it, (out, in) (a
        transposed view)."""
        torch_names = _torch_layout_names(self, layout)
        return OrderedDict((name, param.data.T if name in torch_names else param.data)
                           for name, param in self.named_parameters(remove_duplicate=False))

    def load_state_dict(self, state_dict, strict=True, layout="kernelgrad"):
        """Copy arrays into the parameters in place (optimizers keep their references).

        With strict, a missing or unexpected key is an error; a shape mismatch always is.
        layout="torch" reads each Linear weight as PyTorch's state_dict holds it, (out,
        in), so a torch model's weights load directly (values may be torch tensors).
        Every value is converted and checked before any parameter is written. Returns
        (missing_keys, unexpected_keys).
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict takes a mapping of names to arrays, got "
                            f"{type(state_dict).__name__}")
        torch_names = _torch_layout_names(self, layout)
        params = OrderedDict(self.named_parameters(remove_duplicate=False))
        missing = [name for name in params if name not in state_dict]
        unexpected = [name for name in state_dict if name not in params]
        if strict and (missing or unexpected):
            raise KeyError(f"state_dict does not fit {type(self).__name__}: missing keys "
                           f"{missing}, unexpected keys {unexpected}")
        values = {name: _loadable(state_dict[name], f"state_dict[{name!r}]", params[name],
                                  name in torch_names)
                  for name in params if name in state_dict}
        for name, value in values.items():
            params[name].data[...] = value
        return missing, unexpected

    # ---- Keras-style training (nn/train.py) ----
    def compile(self, optimizer="adam", loss=None, metrics=None):
        """Set the optimizer, loss and metrics that fit() and evaluate() use."""
        from . import train
        train.compile(self, optimizer, loss, metrics)

    def fit(self, x=None, y=None, **options):
        """Train as Keras's Model.fit does; returns the History (see nn/train.py)."""
        from . import train
        return train.fit(self, x, y, **options)

    def evaluate(self, x, y, **options):
        """The compiled loss (and accuracy) on (x, y) in eval mode."""
        from . import train
        return train.evaluate(self, x, y, **options)

    def predict(self, x, **options):
        """The outputs over x in eval mode, as one array."""
        from . import train
        return train.predict(self, x, **options)

    def summary(self, print_fn=print):
        from . import train
        train.summary(self, print_fn)

    def train_on_batch(self, x, y):
        """One optimizer step on (x, y): its loss (and accuracy), as Keras's."""
        from . import train
        return train.train_on_batch(self, x, y)

    def test_on_batch(self, x, y):
        from . import train
        return train.test_on_batch(self, x, y)

    def predict_on_batch(self, x):
        from . import train
        return train.predict_on_batch(self, x)

    def get_weights(self):
        """Copies of the parameters as NumPy arrays (Keras's get_weights)."""
        from . import train
        return train.get_weights(self)

    def set_weights(self, weights):
        from . import train
        train.set_weights(self, weights)

    def count_params(self):
        from . import train
        return train.count_params(self)

    def save_weights(self, path):
        """The state_dict to a safetensors file (kg.save), atomically."""
        from .serialization import save
        save(self.state_dict(), path)

    def load_weights(self, path):
        """Parameters from a file save_weights (or kg.save of a state_dict) wrote."""
        from .serialization import load
        return self.load_state_dict(load(path))

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"  ({name}): " + repr(module).replace("\n", "\n  ")
                 for name, module in self._modules.items()]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


def float_dtype(dtype):
    """A parameter dtype: float32 or float64 (a float16 or integer weight would not train)."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a NumPy float dtype, got {dtype!r}") from None
    if dtype not in checks.FLOAT_DTYPES:
        raise TypeError(f"parameters are float32 or float64, got {dtype}")
    return dtype


def _torch_layout_names(module, layout):
    """The names of the parameters stored transposed in PyTorch's layout (Linear weights)."""
    if layout not in ("kernelgrad", "torch"):
        raise ValueError(f"layout is 'kernelgrad' or 'torch', got {layout!r}")
    if layout == "kernelgrad":
        return set()
    return {f"{prefix}.weight" if prefix else "weight"
            for prefix, m in module.named_modules(remove_duplicate=False)
            if isinstance(m, Linear)}


def _loadable(value, where, param, transposed=False):
    """`value` as the array to copy into `param`: numeric, real, param's shape, on param's
    device and in its dtype (transposed first for a PyTorch-layout weight). `where` names
    the value in an error (state_dict['0.weight'], weight 3)."""
    value = value.data if isinstance(value, Tensor) else value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu()
    array = value if device_of(value) == "cuda" else np.asarray(value) \
        if not isinstance(value, np.ma.MaskedArray) else None
    if array is None:
        raise TypeError(f"{where} is a masked array")
    if transposed and array.ndim == 2:
        array = array.T
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{where} is {array.dtype}, not a real number array")
    if array.shape != param.shape:
        raise ValueError(f"{where} has shape {array.shape} but the parameter "
                         f"has shape {param.shape}")
    return move(array, param.device).astype(param.dtype, copy=False)


def init_bound(fan_in, fan_out, activation, alpha=0.01):
    """Half-width of the uniform initializer Linear uses for `activation`.

    He (Kaiming) uniform, sqrt(6 / ((1 + a^2) fan_in)), for relu, leaky_relu (a = its slope)
    and gelu, which keep about half of their input; Glorot (Xavier) uniform,
    sqrt(6 / (fan_in + fan_out)), for sigmoid, tanh and no activation.
    """
    if activation in ("relu", "gelu"):
        return math.sqrt(6.0 / fan_in)
    if activation == "leaky_relu":
        return math.sqrt(6.0 / ((1.0 + alpha * alpha) * fan_in))
    return math.sqrt(6.0 / (fan_in + fan_out))


class Linear(Module):
    """y = act(x @ weight + bias): weight (in_features, out_features), bias (out_features,).

    `activation` (None, "relu", "leaky_relu", "sigmoid", "tanh", "gelu") runs in the same
    kernel as the GEMM. Weights start uniform in +-init_bound(...) (He for the ReLU family,
    Glorot otherwise), drawn from the library seed; the bias starts at zero.
    """

    def __init__(self, in_features, out_features, bias=True, activation=None,
                 negative_slope=0.01, dtype=np.float32):
        super().__init__()
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"{name} must be a positive integer, got {n!r}")
        if activation not in ACTIVATIONS and activation is not None:
            raise ValueError(f"unknown activation {activation!r}; choose one of "
                             f"{ACTIVATIONS} or None")
        dtype = float_dtype(dtype)
        negative_slope = checks.finite(negative_slope, "negative_slope", dtype=dtype)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.activation, self.negative_slope = activation, negative_slope
        # every argument is checked before the draw: a failed construction takes no draw
        bound = init_bound(in_features, out_features, activation, negative_slope)
        weight = init_generator().uniform(-bound, bound, (in_features, out_features))
        self.weight = Parameter(weight.astype(dtype))
        self.register_parameter("bias", Parameter(np.zeros(out_features, dtype)) if bias else None)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias, self.activation, self.negative_slope)

    def extra_repr(self):
        act = f", activation={self.activation!r}" if self.activation else ""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}{act}")


class _Elementwise(Module):
    function = None

    def forward(self, x):
        return type(self).function(x)


class ReLU(_Elementwise):
    function = staticmethod(F.relu)


class Sigmoid(_Elementwise):
    function = staticmethod(F.sigmoid)


class Tanh(_Elementwise):
    function = staticmethod(F.tanh)


class GELU(_Elementwise):
    function = staticmethod(F.gelu)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Softmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, x):
        return F.log_softmax(x, self.dim)


class Identity(Module):
    """Returns its input (a placeholder layer)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """(N, ...) -> (N, prod(...))."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1)


class Dropout(Module):
    """Zeroes each element with probability p in training mode; the identity in eval mode."""

    def __init__(self, p=0.5):
        super().__init__()
        probability(p)
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


def _check_module(module, where):
    if not isinstance(module, Module):
        raise TypeError(f"{where} takes Modules, got {type(module).__name__}")
    return module


class Sequential(Module):
    """Runs its modules in order: Sequential(m1, m2, ...) or Sequential(OrderedDict of
    named modules). Indexing with an int gives a module, with a slice a Sequential."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            for name, module in modules[0].items():
                setattr(self, name, _check_module(module, "Sequential"))
        else:
            for i, module in enumerate(modules):
                setattr(self, str(i), _check_module(module, "Sequential"))

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        setattr(self, str(len(self._modules)), _check_module(module, "Sequential.append"))
        return self


class ModuleList(Module):
    """A list of modules whose parameters the parent registers (forward is yours)."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module):
        setattr(self, str(len(self._modules)), _check_module(module, "ModuleList"))
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class _Loss(Module):
    function = None

    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in F.REDUCTIONS:
            raise ValueError(f"reduction must be one of {F.REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def forward(self, prediction, target):
        return type(self).function(prediction, target, reduction=self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy from logits (N, C) and integer labels (N,), as PyTorch's:
    `weight` per class, `label_smoothing` in [0, 1]."""

    def __init__(self, weight=None, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.weight = weight
        self.label_smoothing = checks.finite(label_smoothing, "label_smoothing", 0.0, 1.0)

    def forward(self, prediction, target):
        return F.cross_entropy(prediction, target, self.weight, self.reduction,
                               self.label_smoothing)


class NLLLoss(_Loss):
    """The negative log-likelihood of integer labels under log-probabilities."""

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.weight = weight

    def forward(self, prediction, target):
        return F.nll_loss(prediction, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    function = staticmethod(F.binary_cross_entropy_with_logits)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities (after a Sigmoid), as PyTorch's."""
    function = staticmethod(F.binary_cross_entropy)


class MSELoss(_Loss):
    function = staticmethod(F.mse_loss)
