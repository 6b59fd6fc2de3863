"""Tensor and the reverse-mode engine.

A Tensor wraps an array (NumPy now; CuPy with the CUDA kernels) and, when it was made by
a differentiable op while gradients are enabled, the node that made it: the op's inputs
and a closure mapping the output's gradient to the inputs' gradients. `backward()` walks
the graph in reverse topological order, found iteratively (a chain of any length works),
and accumulates into `.grad` of the leaves that require it.

Ops that a kernel provides (matmul, activations, losses, dropout) call `kernelgrad.kernels`
for their forward and backward; the remaining arithmetic here is plain NumPy.
"""
import contextlib
import numbers

import numpy as np

from .. import kernels as K
from ..devices import device_of, move, same_device, to_numpy, xp_of

_grad_enabled = True


class set_grad_enabled(contextlib.ContextDecorator):
    """Ops record a graph (mode True) or not (False) inside this context, or in a function
    it decorates; set_grad_enabled(False) called alone switches recording off until
    switched on again, as in PyTorch."""

    def __init__(self, mode):
        global _grad_enabled
        self._previous, self._mode = _grad_enabled, bool(mode)
        _grad_enabled = self._mode

    def __enter__(self):
        global _grad_enabled
        _grad_enabled = self._mode

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous


class no_grad(set_grad_enabled):
    """Inside this context (or a function it decorates) ops record no graph."""

    def __init__(self):
        self._previous, self._mode = _grad_enabled, False

    def __enter__(self):
        global _grad_enabled
        self._previous, _grad_enabled = _grad_enabled, False


class enable_grad(no_grad):
    """Ops record a graph again inside this context (e.g. inside a no_grad block)."""

    def __enter__(self):
        global _grad_enabled
        self._previous, _grad_enabled = _grad_enabled, True


inference_mode = no_grad  # no separate inference tensors here: the same as no_grad


def is_grad_enabled():
    return _grad_enabled


def _default_dtype(data):
    """NumPy arrays keep their dtype; Python numbers and lists of floats become float32."""
    array = np.asarray(data)
    if not isinstance(data, np.ndarray) and array.dtype == np.float64:
        array = array.astype(np.float32)
    return array


class Tensor:
    """An array with an optional gradient, in the spirit of torch.Tensor."""

    __slots__ = ("data", "requires_grad", "grad", "_node")
    __array_ufunc__ = None  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if device_of(data) == "cpu":
            data = _default_dtype(data) if dtype is None else np.asarray(data, dtype=dtype)
        elif dtype is not None:
            data = data.astype(dtype, copy=False)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {data.dtype}")
        self.data = data
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._node = None

    # ---- properties and conversions ----
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    device = property(lambda self: device_of(self.data))
    is_leaf = property(lambda self: self._node is None)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        where = "" if self.device == "cpu" else ", device='cuda'"
        return f"Tensor({np.array2string(to_numpy(self.data), prefix='Tensor(')}{where}{grad})"

    def numpy(self):
        """The underlying NumPy array (shared, not copied)."""
        if self.device != "cpu":
            raise TypeError("this tensor lives on the GPU: call .to('cpu') first")
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}")
        if self.device == "cuda":  # a synchronizing read: report what the kernels flagged
            K.check_device_errors()
        return self.data.item()

    def detach(self):
        return Tensor(self.data)

    def to(self, device):
        """This tensor on `device` ("cpu", "cuda" or "auto"); itself when already there."""
        data = move(self.data, device)
        if data is self.data:
            return self
        return Tensor(data, requires_grad=self.requires_grad)

    def astype(self, dtype):
        """A differentiable cast (the gradient is cast back)."""
        source = self.data.dtype
        return _make(self.data.astype(dtype), (self,), lambda g: (g.astype(source),))

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    # ---- autograd ----
    def backward(self, gradient=None):
        """Accumulate d(self)/d(leaf) into every leaf's .grad that requires it.

        A one-element tensor gets the implicit gradient 1; any other needs `gradient`
        of its shape.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input "
                               "of the computation had requires_grad=True")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() on a tensor of shape {self.shape} needs a "
                                   "gradient of that shape; only a one-element tensor gets "
                                   "the implicit gradient 1")
            gradient = np.ones_like(self.data)
        else:
            gradient = gradient.data if isinstance(gradient, Tensor) else gradient
            # a copy: the user keeps their array, and .grad must not share it
            gradient = xp_of(self.data).array(gradient, dtype=self.dtype)
            if gradient.shape != self.shape:
                raise ValueError(f"gradient has shape {gradient.shape} but the tensor has "
                                 f"shape {self.shape}")
        _run_backward(self, gradient)

    def zero_grad(self):
        self.grad = None

    # ---- arithmetic ----
    def __add__(self, other):
        o = _data(other)
        a_shape, b_shape = self.shape, np.shape(o)
        return _make(self.data + o, (self, other),
                     lambda g: (_unbroadcast(g, a_shape), _unbroadcast(g, b_shape)))

    __radd__ = __add__

    def __sub__(self, other):
        o = _data(other)
        a_shape, b_shape = self.shape, np.shape(o)
        return _make(self.data - o, (self, other),
                     lambda g: (_unbroadcast(g, a_shape), _unbroadcast(-g, b_shape)))

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        a, b = self.data, _data(other)
        return _make(a * b, (self, other),
                     lambda g: (_unbroadcast(g * b, np.shape(a)), _unbroadcast(g * a, np.shape(b))))

    __rmul__ = __mul__

    def __truediv__(self, other):
        a, b = self.data, _data(other)
        out = a / b
        return _make(out, (self, other),
                     lambda g: (_unbroadcast(g / b, np.shape(a)),
                                _unbroadcast(-g * out / b, np.shape(b))))

    def __rtruediv__(self, other):
        a, b = _data(other), self.data
        out = a / b
        return _make(out, (self,), lambda g: (_unbroadcast(-g * out / b, np.shape(b)),))

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return exp(log(self) * exponent)
        if not isinstance(exponent, numbers.Real):
            raise TypeError(f"exponent must be a real number or a Tensor, got {exponent!r}")
        a = self.data
        return _make(a ** exponent, (self,), lambda g: (g * exponent * a ** (exponent - 1),))

    def __rpow__(self, base):
        xp = xp_of(self.data)
        base = xp.asarray(_data(base))
        out = base ** self.data
        return _make(out, (self,), lambda g: (g * out * xp.log(base),))

    def __neg__(self):
        return _make(-self.data, (self,), lambda g: (-g,))

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    # ---- reductions and shape ----
    def sum(self, axis=None, keepdims=False):
        shape = self.shape
        out = xp_of(self.data).asarray(self.data.sum(axis=axis, keepdims=keepdims))
        return _make(out, (self,), lambda g: (_expand(g, shape, axis, keepdims),))

    def mean(self, axis=None, keepdims=False):
        shape = self.shape
        out = xp_of(self.data).asarray(self.data.mean(axis=axis, keepdims=keepdims))
        count = self.data.size // max(out.size, 1)
        return _make(out, (self,), lambda g: (_expand(g / count, shape, axis, keepdims),))

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        source = self.shape
        return _make(self.data.reshape(shape), (self,), lambda g: (g.reshape(source),))

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        axes = tuple(axes) or tuple(reversed(range(self.ndim)))
        inverse = tuple(np.argsort(axes))
        return _make(self.data.transpose(axes), (self,), lambda g: (g.transpose(inverse),))

    T = property(lambda self: self.transpose())

    def __getitem__(self, index):
        index = index.data if isinstance(index, Tensor) else index
        shape, dtype = self.shape, self.dtype

        xp = xp_of(self.data)

        def backward(g):
            full = xp.zeros(shape, dtype=dtype)
            _scatter_add(full, index, g)  # repeated fancy indices add up
            return (full,)
        return _make(xp.asarray(self.data[index]), (self,), backward)

    # ---- elementwise functions (the activations run the kernels) ----
    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def relu(self):
        from . import functional as F
        return F.relu(self)

    def sigmoid(self):
        from . import functional as F
        return F.sigmoid(self)

    def tanh(self):
        from . import functional as F
        return F.tanh(self)


def tensor(data, requires_grad=False, dtype=None):
    """A new Tensor (the PyTorch spelling)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _make(data, inputs, backward):
    """The op's output Tensor; records (inputs, backward) when a gradient can flow.

    `backward(g)` returns one gradient (or None) per entry of `inputs`; entries that are
    not Tensors requiring grad are skipped.
    """
    out = Tensor.__new__(Tensor)
    out.data, out.grad, out._node = data, None, None
    out.requires_grad = False
    if _grad_enabled:
        for x in inputs:
            if isinstance(x, Tensor) and x.requires_grad:
                out.requires_grad = True
                out._node = (inputs, backward)
                break
    return out


def _scatter_add(target, index, values):
    if device_of(target) == "cuda":
        import cupyx
        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)


def _unbroadcast(g, shape):
    """Sum g down to `shape`, undoing NumPy broadcasting."""
    if g.shape == shape:
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _expand(g, shape, axis, keepdims):
    """Broadcast a reduction's gradient back to the input's shape."""
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axis)
    return np.broadcast_to(g, shape)


def _topological_order(root):
    """Tensors reachable from root through requires_grad edges, each after its inputs."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        tensor, finished = stack.pop()
        if finished:
            order.append(tensor)
            continue
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        stack.append((tensor, True))
        if tensor._node is not None:
            for x in tensor._node[0]:
                if isinstance(x, Tensor) and x.requires_grad and id(x) not in seen:
                    stack.append((x, False))
    return order


def _run_backward(root, gradient):
    grads = {id(root): gradient}
    handed_out = set()  # memory already stored in some .grad: never share it between two
    for tensor in reversed(_topological_order(root)):
        g = grads.pop(id(tensor), None)
        if g is None:
            continue
        if tensor._node is None:
            _accumulate(tensor, g, handed_out)
            continue
        inputs, backward = tensor._node
        for x, gx in zip(inputs, backward(g)):
            if gx is None or not isinstance(x, Tensor) or not x.requires_grad:
                continue
            previous = grads.get(id(x))
            grads[id(x)] = gx if previous is None else previous + gx


def _owner(array):
    """The array that owns `array`'s memory (NumPy points a view's base at the owner)."""
    return array if array.base is None else array.base


def _accumulate(leaf, g, handed_out):
    """leaf.grad += g. A gradient reaching a leaf is memory of this backward pass alone (a
    kernel's new output, an op's result, a view of either, or the copy of the user's
    `gradient`): stored as it is, unless another leaf already holds that memory or it is a
    read-only broadcast."""
    if g.dtype != leaf.data.dtype or g.shape != leaf.data.shape:
        g = np.broadcast_to(g, leaf.data.shape).astype(leaf.data.dtype)
    elif id(_owner(g)) in handed_out or not getattr(g.flags, "writeable", True):
        g = g.copy()
    handed_out.add(id(_owner(g)))
    leaf.grad = g if leaf.grad is None else leaf.grad + g


# ---- free functions ----

def exp(x):
    out = np.exp(x.data)
    return _make(out, (x,), lambda g: (g * out,))


def log(x):
    a = x.data
    return _make(np.log(a), (x,), lambda g: (g / a,))


def matmul(a, b):
    """a @ b for 1-D or 2-D operands, forward and backward on the matmul kernel."""
    a_data, b_data = _as_array(a), _as_array(b)
    same_device(a_data, b_data)
    if a_data.ndim not in (1, 2) or b_data.ndim not in (1, 2):
        raise ValueError(f"matmul supports 1-D and 2-D operands, got shapes {a_data.shape} "
                         f"and {b_data.shape}")
    a2 = a_data.reshape(1, -1) if a_data.ndim == 1 else a_data
    b2 = b_data.reshape(-1, 1) if b_data.ndim == 1 else b_data
    out = K.matmul(a2, b2)
    out_shape = a_data.shape[:-1] + b_data.shape[1:]

    def backward(g):
        g2 = g.reshape(a2.shape[0], b2.shape[1])
        ga = K.matmul(g2, b2, trans_b=True).reshape(a_data.shape) if _needs(a) else None
        gb = K.matmul(a2, g2, trans_a=True).reshape(b_data.shape) if _needs(b) else None
        return ga, gb
    return _make(out.reshape(out_shape), (a, b), backward)


def _needs(x):
    return isinstance(x, Tensor) and x.requires_grad


def _as_array(x):
    """The array behind x; CuPy arrays pass through so that a mixed-device op says so."""
    if isinstance(x, Tensor):
        return x.data
    return x if isinstance(x, np.ndarray) or device_of(x) == "cuda" else np.asarray(x)


def as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)

