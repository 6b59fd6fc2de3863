"""Tensor and the reverse-mode engine.

A Tensor wraps an array (NumPy, or CuPy with the CUDA kernels) and, when it was made by
a differentiable op while gradients are enabled, the node that made it: the op's inputs
and a closure mapping the output's gradient to the inputs' gradients. `backward()` walks
the graph in reverse topological order, found iteratively (a chain of any length works),
and accumulates into `.grad` of the leaves that require it.

Ops that a kernel provides (matmul, activations, losses, dropout) call `kernelgrad.kernels`
for their forward and backward; the remaining arithmetic here is plain NumPy (or CuPy).
The API follows torch.Tensor's: `dim=`/`keepdim=` (NumPy's `axis=`/`keepdims=` work too),
`size()` as a method, comparisons that give boolean tensors, in-place arithmetic that
updates a tensor outside autograd (`with no_grad(): p -= lr * p.grad`), and zero-copy
exchange with NumPy, CuPy and PyTorch (__array__, __dlpack__, __cuda_array_interface__).
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
    """NumPy arrays and scalars keep their dtype; Python numbers and lists of floats become
    float32."""
    array = np.asarray(data)
    if not isinstance(data, (np.ndarray, np.generic)) and array.dtype == np.float64:
        array = array.astype(np.float32)
    return array


def _axes(dim, axis):
    """PyTorch's dim= or NumPy's axis= (one of them)."""
    if dim is not None and axis is not None:
        raise TypeError("give dim or axis, not both")
    return axis if dim is None else dim


def _keep(keepdim, keepdims):
    return bool(keepdim or keepdims)


class Tensor:
    """An array with an optional gradient, in the spirit of torch.Tensor."""

    __slots__ = ("data", "requires_grad", "_grad", "_node", "_hooks", "__weakref__")
    __hash__ = object.__hash__  # == compares values, so hashing stays by identity

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy hands a ufunc with a Tensor operand here. `ndarray (op) Tensor` runs the
        Tensor's operator (a Tensor, gradient included); an ndarray updated in place from
        a Tensor, outside autograd (`p.data += -lr * p.grad`, torch's idiom), takes its
        values. Any other ufunc (np.exp(t)) raises TypeError: use the Tensor's method."""
        if method != "__call__":
            return NotImplemented
        out = kwargs.get("out")
        if out is not None:
            if not all(type(o) is np.ndarray for o in out):
                return NotImplemented
            return ufunc(*(x.data if isinstance(x, Tensor) else x for x in inputs), **kwargs)
        names = _OPERATORS.get(ufunc)
        if names is None or len(inputs) != 2 or kwargs:
            return NotImplemented
        if inputs[0] is self:
            return getattr(self, names[0])(inputs[1])
        return getattr(self, names[1])(inputs[0])

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if type(data) is np.ndarray and dtype is None:
            pass  # kept as it is (what _default_dtype does with one), without the tests
        elif device_of(data) == "cpu":
            data = _default_dtype(data) if dtype is None else np.asarray(data, dtype=dtype)
        elif dtype is not None:
            data = data.astype(dtype, copy=False)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {data.dtype}")
        self.data = data
        self.requires_grad = bool(requires_grad)
        self._grad = None
        self._node = None
        self._hooks = None

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) each time backward has accumulated this leaf's .grad (PyTorch's
        name; distributed.DataParallel starts its all-reduces from here). Returns a handle
        whose remove() takes the hook off."""
        if not self.is_leaf:
            raise RuntimeError("a post-accumulate-grad hook goes on a leaf tensor (a parameter)")
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {hook!r}")
        if self._hooks is None:
            self._hooks = {}
        key = object()
        self._hooks[key] = hook
        return _HookHandle(self._hooks, key)

    # ---- properties and conversions ----
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    device = property(lambda self: device_of(self.data))
    is_leaf = property(lambda self: self._node is None)
    T = property(lambda self: self.permute(*reversed(range(self.ndim))))

    @property
    def grad(self):
        """The accumulated gradient, a Tensor (None until backward reaches this leaf)."""
        return self._grad

    @grad.setter
    def grad(self, value):
        if type(value) is np.ndarray:  # a backward's own result
            value = Tensor(value)
        elif value is not None and not isinstance(value, Tensor):
            value = Tensor(value if device_of(value) == "cuda" else np.asarray(value))
        self._grad = value

    def size(self, dim=None):
        """The shape (a tuple), or its length along `dim`."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return int(self.data.size)

    nelement = numel

    def dim(self):
        return self.data.ndim

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        where = "" if self.device == "cpu" else ", device='cuda'"
        return f"Tensor({np.array2string(to_numpy(self.data), prefix='Tensor(')}{where}{grad})"

    def numpy(self):
        """The underlying NumPy array (shared, not copied)."""
        if self.device != "cpu":
            raise TypeError("this tensor lives on the GPU: call .cpu() first")
        return self.data

    def tolist(self):
        return to_numpy(self.data).tolist()

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}")
        if self.device == "cuda":  # a synchronizing read: report what the kernels flagged
            K.check_device_errors()
        return self.data.item()

    def __float__(self):
        return float(self.item())

    def __format__(self, spec):
        """f"{loss:.4f}" formats a 0-d tensor's value, as torch's does."""
        if self.data.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.data.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, got {self.dtype}")
        return int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of {self.data.size} elements is "
                             "ambiguous: use .any() or .all()")
        return bool(self.item())

    # interop: NumPy, CuPy and PyTorch read a Tensor's memory without a copy
    def __array__(self, dtype=None, copy=None):
        if self.device != "cpu":
            raise TypeError("this tensor lives on the GPU: call .cpu() first")
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __dlpack__(self, *args, **kwargs):
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    @property
    def __cuda_array_interface__(self):
        if self.device != "cuda":
            raise AttributeError("a CPU tensor has no __cuda_array_interface__")
        return self.data.__cuda_array_interface__

    def detach(self):
        return Tensor(self.data)

    def clone(self):
        """A copy of the data that gradients flow back through."""
        return _make(self.data.copy(), (self,), lambda g: (g,))

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def to(self, target, dtype=None):
        """This tensor on a device ("cpu", "cuda", "auto") or in a dtype; itself when
        nothing changes."""
        if target is not None and not isinstance(target, str):
            target, dtype = None, target  # .to(np.float64)
        out = self
        if target is not None:
            data = move(self.data, target)
            if data is not self.data:
                out = Tensor(data, requires_grad=self.requires_grad)
        if dtype is not None and np.dtype(dtype) != out.dtype:
            out = out.astype(dtype)
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def astype(self, dtype):
        """A differentiable cast (the gradient is cast back)."""
        source = self.data.dtype
        return _make(self.data.astype(dtype), (self,), lambda g: (g.astype(source),))

    def type(self, dtype):
        return self.astype(dtype)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def long(self):
        return Tensor(self.data.astype(np.int64))

    def int(self):
        return Tensor(self.data.astype(np.int32))

    def bool(self):
        return Tensor(self.data.astype(np.bool_))

    # ---- autograd ----
    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad that requires it.

        A one-element tensor gets the implicit gradient 1; any other needs `gradient`
        of its shape. The graph is kept (retain_graph is accepted and always true: a
        second backward adds the same gradients again, where torch requires it to be
        asked for); create_graph=True (gradients of gradients) is not supported.
        """
        if create_graph:
            raise NotImplementedError("backward(create_graph=True): kernelgrad's backward "
                                      "functions are not differentiable")
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input "
                               "of the computation had requires_grad=True")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() on a tensor of shape {self.shape} needs a "
                                   "gradient of that shape; only a one-element tensor gets "
                                   "the implicit gradient 1")
            gradient = xp_of(self.data).ones_like(self.data)
        else:
            gradient = gradient.data if isinstance(gradient, Tensor) else gradient
            # a copy: the user keeps their array, and .grad must not share it
            gradient = xp_of(self.data).array(gradient, dtype=self.dtype)
            if gradient.shape != self.shape:
                raise ValueError(f"gradient has shape {gradient.shape} but the tensor has "
                                 f"shape {self.shape}")
        _run_backward(self, gradient)

    def zero_grad(self):
        self._grad = None

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

    def pow(self, exponent):
        return self ** exponent

    # torch's method names for the operators
    def add(self, other, alpha=1):
        return self + (other if alpha == 1 else alpha * _tensor(other))

    def sub(self, other, alpha=1):
        return self - (other if alpha == 1 else alpha * _tensor(other))

    def mul(self, other):
        return self * other

    def div(self, other):
        return self / other

    def matmul(self, other):
        return matmul(self, other)

    def mm(self, other):
        if self.ndim != 2 or np.ndim(_data(other)) != 2:
            raise ValueError(f"mm takes two 2-D tensors, got shapes {self.shape} and "
                             f"{np.shape(_data(other))}")
        return matmul(self, other)

    def square(self):
        return self * self

    def contiguous(self):
        return self  # (every tensor's data is one C-ordered array)

    def type_as(self, other):
        return self if self.dtype == other.dtype else self.astype(other.dtype)

    def __rpow__(self, base):
        xp = xp_of(self.data)
        base = xp.asarray(_data(base))
        out = base ** self.data
        return _make(out, (self,), lambda g: (g * out * xp.log(base),))

    def __neg__(self):
        return _make(-self.data, (self,), lambda g: (-g,))

    def __pos__(self):
        return self

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    # In place: outside autograd (no_grad, or nothing here requires grad) the data change
    # and the tensor is returned, so `p -= lr * p.grad` updates the parameter; inside it a
    # new tensor is made (the graph stays right), except for a leaf that requires grad,
    # which PyTorch refuses too.
    def _inplace(self, other, op, name):
        if _grad_enabled and (self.requires_grad or _needs(other)):
            if self.requires_grad and self._node is None:
                raise RuntimeError(f"a leaf tensor that requires grad is used in an in-place "
                                   f"operation ({name}): update it inside `with no_grad():`")
            return op(self, other)
        result = op(Tensor(self.data), _data(other)).data
        if result.shape != self.shape:
            raise ValueError(f"in-place {name} would change the shape {self.shape} to "
                             f"{result.shape}")
        self.data[...] = result
        return self

    def __iadd__(self, other):
        return self._inplace(other, Tensor.__add__, "+=")

    def __isub__(self, other):
        return self._inplace(other, Tensor.__sub__, "-=")

    def __imul__(self, other):
        return self._inplace(other, Tensor.__mul__, "*=")

    def __itruediv__(self, other):
        return self._inplace(other, Tensor.__truediv__, "/=")

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        if _grad_enabled and self.requires_grad and self._node is None:
            raise RuntimeError("a leaf tensor that requires grad is used in an in-place "
                               "operation (fill_): do it inside `with no_grad():`")
        self.data[...] = value
        return self

    def copy_(self, source):
        if _grad_enabled and self.requires_grad and self._node is None:
            raise RuntimeError("a leaf tensor that requires grad is used in an in-place "
                               "operation (copy_): do it inside `with no_grad():`")
        self.data[...] = move(_as_array(source), self.device)
        return self

    def __setitem__(self, index, value):
        if _grad_enabled and self.requires_grad:
            raise RuntimeError("item assignment on a tensor that requires grad: do it inside "
                               "`with no_grad():`")
        self.data[_data(index)] = _data(value)

    # ---- comparisons: boolean tensors, no gradient ----
    def _compare(self, other, op):
        return Tensor(op(self.data, _data(other)))

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def equal(self, other):
        """True when both have the same shape and values (torch.equal)."""
        other = _data(other)
        return self.shape == np.shape(other) and bool((self.data == other).all())

    def any(self):
        return Tensor(self.data.any())

    def all(self):
        return Tensor(self.data.all())

    # ---- reductions ----
    def sum(self, dim=None, keepdim=False, axis=None, keepdims=False, dtype=None):
        axis, keepdims = _axes(dim, axis), _keep(keepdim, keepdims)
        shape = self.shape
        out = xp_of(self.data).asarray(self.data.sum(axis=axis, keepdims=keepdims, dtype=dtype))
        return _make(out, (self,), lambda g: (_expand(g, shape, axis, keepdims),))

    def mean(self, dim=None, keepdim=False, axis=None, keepdims=False):
        axis, keepdims = _axes(dim, axis), _keep(keepdim, keepdims)
        shape = self.shape
        out = xp_of(self.data).asarray(self.data.mean(axis=axis, keepdims=keepdims))
        count = self.data.size // max(out.size, 1)
        return _make(out, (self,), lambda g: (_expand(g / count, shape, axis, keepdims),))

    def var(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        """The variance, divided by n - 1 (unbiased, torch's default) or n, or n -
        correction."""
        correction = (1 if unbiased else 0) if correction is None else correction
        centred = self - self.mean(dim, keepdim=True)
        count = self.data.size if dim is None else int(np.prod(
            [self.shape[d] for d in (dim if isinstance(dim, (tuple, list)) else (dim,))]))
        return (centred * centred).sum(dim, keepdim=keepdim) / (count - correction)

    def std(self, dim=None, unbiased=True, keepdim=False, *, correction=None):
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def _extreme(self, dim, keepdim, axis, keepdims, pick, arg):
        axis, keepdims = _axes(dim, axis), _keep(keepdim, keepdims)
        a, xp = self.data, xp_of(self.data)
        if axis is None:  # the whole tensor: the gradient splits evenly among the ties
            value = xp.asarray(pick(a))
            ties = a == value

            def backward(g):
                return (ties * (g / ties.sum()),)
            return _make(value, (self,), backward)
        index = arg(a, axis=axis)
        value = xp.take_along_axis(a, xp.expand_dims(index, axis), axis)
        if not keepdims:
            value = xp.squeeze(value, axis)

        def backward(g):
            full = xp.zeros_like(a)
            gg = g if keepdims else xp.expand_dims(g, axis)
            xp.put_along_axis(full, xp.expand_dims(index, axis), gg, axis)
            return (full,)
        values = _make(value, (self,), backward)
        indices = Tensor(index if not keepdims else xp.expand_dims(index, axis))
        return MinMax(values, indices)

    def max(self, dim=None, keepdim=False, axis=None, keepdims=False):
        """The largest value, or with dim, (values, indices) along it as PyTorch's max."""
        return self._extreme(dim, keepdim, axis, keepdims, lambda a: a.max(),
                             lambda a, axis: a.argmax(axis=axis))

    def min(self, dim=None, keepdim=False, axis=None, keepdims=False):
        return self._extreme(dim, keepdim, axis, keepdims, lambda a: a.min(),
                             lambda a, axis: a.argmin(axis=axis))

    def argmax(self, dim=None, keepdim=False, axis=None, keepdims=False):
        axis, keepdims = _axes(dim, axis), _keep(keepdim, keepdims)
        index = self.data.argmax(axis=axis)
        if keepdims and axis is not None:
            index = xp_of(index).expand_dims(index, axis)
        return Tensor(xp_of(self.data).asarray(index))

    def argmin(self, dim=None, keepdim=False, axis=None, keepdims=False):
        axis, keepdims = _axes(dim, axis), _keep(keepdim, keepdims)
        index = self.data.argmin(axis=axis)
        if keepdims and axis is not None:
            index = xp_of(index).expand_dims(index, axis)
        return Tensor(xp_of(self.data).asarray(index))

    # ---- shape ----
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        source = self.shape
        return _make(self.data.reshape(shape), (self,), lambda g: (g.reshape(source),))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        shape = self.shape
        merged = int(np.prod(shape[start:end + 1]))
        return self.reshape(shape[:start] + (merged,) + shape[end + 1:])

    def unsqueeze(self, dim):
        dim = dim if dim >= 0 else dim + self.ndim + 1
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        dim = dim % max(self.ndim, 1)
        if self.ndim == 0 or self.shape[dim] != 1:
            return self
        return self.reshape(self.shape[:dim] + self.shape[dim + 1:])

    def permute(self, *dims):
        dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        dims = tuple(d % self.ndim for d in dims) if self.ndim else ()
        inverse = tuple(np.argsort(dims)) if dims else ()
        return _make(self.data.transpose(dims), (self,), lambda g: (g.transpose(inverse),))

    def transpose(self, dim0=None, dim1=None):
        """PyTorch's: dim0 and dim1 swapped (without arguments, every axis reversed)."""
        if dim0 is None:
            return self.T
        order = list(range(self.ndim))
        order[dim0], order[dim1] = order[dim1], order[dim0]
        return self.permute(order)

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t() is for tensors of at most 2 dimensions, got {self.shape}")
        return self.T

    def __getitem__(self, index):
        index = _index(index)
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

    def abs(self):
        a = self.data
        return _make(abs(a), (self,), lambda g: (g * xp_of(a).sign(a),))

    __abs__ = abs

    def sqrt(self):
        out = xp_of(self.data).sqrt(self.data)
        return _make(out, (self,), lambda g: (g / (2 * out),))

    def clamp(self, min=None, max=None):
        a = self.data
        out = xp_of(a).clip(a, min, max)
        inside = (out == a)
        return _make(out, (self,), lambda g: (g * inside,))

    clip = clamp

    def relu(self):
        from . import functional as F
        return F.relu(self)

    def sigmoid(self):
        from . import functional as F
        return F.sigmoid(self)

    def tanh(self):
        from . import functional as F
        return F.tanh(self)

    def softmax(self, dim=-1):
        from . import functional as F
        return F.softmax(self, dim)

    def log_softmax(self, dim=-1):
        from . import functional as F
        return F.log_softmax(self, dim)


class MinMax(tuple):
    """(values, indices), as torch.max(x, dim) returns them."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def tensor(data, requires_grad=False, dtype=None):
    """A new Tensor with its own copy of the data, as torch.tensor: training it never
    writes the caller's array (kg.from_numpy and Tensor(array) share the array's memory,
    as torch.from_numpy does)."""
    source = data.data if isinstance(data, Tensor) else data
    out = Tensor(source, requires_grad=requires_grad, dtype=dtype)
    if out.data is source or getattr(out.data, "base", None) is not None:
        out.data = out.data.copy()
    return out


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _index(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _make(data, inputs, backward):
    """The op's output Tensor; records (inputs, backward) when a gradient can flow.

    `backward(g)` returns one gradient (or None) per entry of `inputs`; entries that are
    not Tensors requiring grad are skipped.
    """
    if type(data) is not np.ndarray and isinstance(data, np.generic):
        data = np.asarray(data)  # 0-d arithmetic gives NumPy scalars: keep arrays
    out = Tensor.__new__(Tensor)
    out.data, out._grad, out._node, out._hooks = data, None, None, None
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
        g = xp_of(g).expand_dims(g, axis)
    return xp_of(g).broadcast_to(g, shape)


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
        g = xp_of(g).broadcast_to(g, leaf.data.shape).astype(leaf.data.dtype)
    elif id(_owner(g)) in handed_out or not getattr(g.flags, "writeable", True):
        g = g.copy()
    handed_out.add(id(_owner(g)))
    if leaf._grad is None:
        leaf._grad = Tensor(g)
    else:
        leaf._grad = Tensor(leaf._grad.data + g)
    if leaf._hooks:
        for hook in list(leaf._hooks.values()):
            hook(leaf)


class _HookHandle:
    def __init__(self, hooks, key):
        self._hooks, self._key = hooks, key

    def remove(self):
        self._hooks.pop(self._key, None)


# ---- free functions ----

def exp(x):
    out = xp_of(x.data).exp(x.data)
    return _make(out, (x,), lambda g: (g * out,))


def log(x):
    a = x.data
    return _make(xp_of(a).log(a), (x,), lambda g: (g / a,))


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


# ufunc -> (Tensor's operator when the Tensor is the left operand, when it is the right)
_OPERATORS = {np.add: ("__add__", "__radd__"), np.subtract: ("__sub__", "__rsub__"),
              np.multiply: ("__mul__", "__rmul__"),
              np.true_divide: ("__truediv__", "__rtruediv__"),
              np.power: ("__pow__", "__rpow__"), np.matmul: ("__matmul__", "__rmatmul__"),
              np.equal: ("__eq__", "__eq__"), np.not_equal: ("__ne__", "__ne__"),
              np.less: ("__lt__", "__gt__"), np.less_equal: ("__le__", "__ge__"),
              np.greater: ("__gt__", "__lt__"), np.greater_equal: ("__ge__", "__le__")}


def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _needs(x):
    return isinstance(x, Tensor) and x.requires_grad


def _as_array(x):
    """The array behind x; CuPy arrays pass through so that a mixed-device op says so."""
    if isinstance(x, Tensor):
        return x.data
    return x if isinstance(x, np.ndarray) or device_of(x) == "cuda" else np.asarray(x)


def as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)
