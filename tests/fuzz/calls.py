"""Generated calls of the public kernel functions and the nn entry points.

A valid call of each function is built first (`BUILDERS`), then a category bends it: odd
shapes, other dtypes, subclasses and lists, non-contiguous or read-only views, aliased
buffers, special values, bad hyper-parameters, the foreach lists' defects. A call either
raises ValueError or TypeError having changed nothing, or returns what the float64
reference gives (checked here): anything else is a failure.
"""
import math

import numpy as np
from hypothesis import strategies as st

import kernelgrad as kg
import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R

from . import guard

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 1e-310, 3e38, -3e38,
                     1.0, -2.5, 80.0, -90.0], np.float64)
BAD_DTYPES = [np.float16, np.int32, np.int64, np.uint8, np.bool_, np.complex64, object]
OPTIMIZERS = {
    "sgd": (K.sgd_step, ["momentum_buf"], dict(lr=0.1, momentum=0.9, dampening=0.0,
                                                weight_decay=0.01, nesterov=True, step=2)),
    "adagrad": (K.adagrad_step, ["state_sum"], dict(lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                                     eps=1e-10, step=3)),
    "rmsprop": (K.rmsprop_step, ["square_avg", "grad_avg", "momentum_buf"],
                dict(lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.01, momentum=0.5,
                     centered=True)),
    "adam": (K.adam_step, ["exp_avg", "exp_avg_sq"], dict(lr=0.01, beta1=0.9, beta2=0.99,
                                                          eps=1e-8, weight_decay=0.01, step=2)),
}
# the keyword-only states of RMSprop; the others are positional
KEYWORD_STATES = {"grad_avg", "momentum_buf"}


class Call:
    """fn(*args, **kwargs) and how to check what it returns or updates in place."""

    def __init__(self, name, fn, args, kwargs, check, inplace=()):
        self.name, self.fn, self.args, self.kwargs = name, fn, list(args), dict(kwargs)
        self.check, self.inplace = check, tuple(inplace)

    def arrays(self):
        """Every array the call can reach (inside lists too), for the before/after check."""
        found = []

        def walk(value):
            if isinstance(value, np.ndarray):
                found.append(value)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    walk(item)
        for value in (*self.args, *self.kwargs.values()):
            walk(value)
        return found

    def describe(self):
        def show(value):
            if isinstance(value, np.ndarray):
                flags = "" if value.flags.c_contiguous else " strided"
                flags += "" if value.flags.writeable else " readonly"
                kind = "" if type(value) is np.ndarray else type(value).__name__ + " "
                return f"{kind}{value.dtype}{list(value.shape)}{flags}"
            if isinstance(value, (list, tuple)):
                return "[" + ", ".join(show(v) for v in value) + "]"
            return repr(value)
        parts = [show(a) for a in self.args] + [f"{k}={show(v)}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(parts)})"


# ---- arrays ----

def _values(data, shape, dtype, special=False):
    count = math.prod(shape)
    seed = data.draw(st.integers(0, 2 ** 32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(count)
    if special and count:
        picks = rng.random(count) < 0.5
        values[picks] = rng.choice(SPECIALS, picks.sum())
    with np.errstate(over="ignore"):
        return values.reshape(shape).astype(dtype)


def array(data, shape, dtype=F32, special=False):
    """A guarded array of `shape` with random (or special) values."""
    place = data.draw(st.sampled_from(["end", "start"]), label="place")
    a = guard.empty(shape, dtype, place)
    a[...] = _values(data, shape, dtype, special)
    return a


def dims(data, low=1, high=40):
    return data.draw(st.integers(low, high), label="dim")


# ---- checks against the reference ----

def close(out, ref, rtol, scale=None, what=""):
    """out within rtol of ref, relative to |ref| + scale; NaN exactly where ref has NaN, the
    same infinities, out's dtype as the reference's rounding allows."""
    dtype = np.asarray(out).dtype
    out = np.asarray(out, np.float64)
    with np.errstate(over="ignore"):  # the reference as the output's dtype can hold it
        ref = np.asarray(ref, np.float64).astype(dtype).astype(np.float64)
    assert out.shape == ref.shape, f"{what}: shape {out.shape}, reference {ref.shape}"
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(out), nan), f"{what}: NaN where the reference has none"
    inf = np.isinf(ref)
    assert np.array_equal(out[inf], ref[inf]), f"{what}: infinities differ"
    finite = ~nan & ~inf
    bound = rtol * (np.abs(ref[finite]) + (0.0 if scale is None else
                                            np.broadcast_to(scale, ref.shape)[finite])) + 1e-30
    err = np.abs(out[finite] - ref[finite])
    assert np.all(err <= bound), f"{what}: off by {np.max(err / bound):.3g} of the bound"


def _rtol(dtype, k=1):
    return (2e-6 if np.dtype(dtype) == F32 else 1e-13) * max(1.0, math.sqrt(k)) * 4


def plain(a):
    return np.array(np.asarray(a), dtype=np.float64) if a is not None else None


# the dtype the call's arrays have: checks convert them to float64 for the reference, and
# what may overflow is decided by the dtype the kernel computed in
_CALL_DTYPE = [np.float64]


def _finite_inputs(*arrays):
    """Inputs for which the float64 reference is the answer: finite, and small enough that
    no product or square of them overflows the kernel's dtype on the way (a float32 kernel
    then rightly gives inf where the float64 reference stays finite)."""
    limit = np.sqrt(np.finfo(_CALL_DTYPE[0]).max) / 1e3
    for a in arrays:
        if a is None:
            continue
        a = np.asarray(a)
        if not (np.isfinite(a.astype(np.float64)).all() and (np.abs(a) < limit).all()):
            return False
    return True


# ---- valid calls, one builder per function ----

def build_matmul(data, dtype):
    m, n, k = dims(data), dims(data), dims(data)
    ta, tb = data.draw(st.booleans()), data.draw(st.booleans())
    a = array(data, (k, m) if ta else (m, k), dtype)
    b = array(data, (n, k) if tb else (k, n), dtype)
    impl = data.draw(st.sampled_from(["numba", "blas", "auto"]))

    def check(call, out):
        a, b = plain(call.args[0]), plain(call.args[1])
        ta, tb = call.kwargs["trans_a"], call.kwargs["trans_b"]
        if _finite_inputs(a, b):
            close(out, R.matmul(a, b, ta, tb), _rtol(out.dtype, a.size),
                  R.matmul(np.abs(a), np.abs(b), ta, tb), "matmul")
    return Call("matmul", K.matmul, [a, b], dict(trans_a=ta, trans_b=tb, impl=impl), check)


def build_linear(data, dtype):
    batch, fan_in, fan_out = dims(data), dims(data), dims(data)
    act = data.draw(st.sampled_from([None, *K.ACTIVATIONS]))
    x, w = array(data, (batch, fan_in), dtype), array(data, (fan_in, fan_out), dtype)
    b = array(data, (fan_out,), dtype) if data.draw(st.booleans()) else None

    def check(call, out):
        x, w, b = (plain(v) for v in call.args[:3])
        if _finite_inputs(x, w, b) and call.kwargs["activation"] in (None, "relu"):
            scale = np.abs(x) @ np.abs(w) + (0 if b is None else np.abs(b))
            close(out, R.linear(x, w, b, call.kwargs["activation"])[0], _rtol(out.dtype, fan_in),
                  scale, "linear")
    return Call("linear", K.linear, [x, w, b], dict(activation=act, impl="numba"), check)


def build_activation(data, dtype):
    name = data.draw(st.sampled_from(K.ACTIVATIONS))
    shape = tuple(dims(data, 1, 30) for _ in range(data.draw(st.integers(0, 3))))
    x = array(data, shape, dtype)

    def check(call, out):
        x = plain(call.args[0])
        if _finite_inputs(x) and name in ("relu", "leaky_relu"):
            close(out, R.activation(x, name, call.kwargs.get("alpha", 0.01)), _rtol(out.dtype),
                  what=name)
    return Call("activation", K.activation, [x, name], dict(alpha=0.05), check)


def build_activation_backward(data, dtype):
    name = data.draw(st.sampled_from(K.ACTIVATIONS))
    shape = tuple(dims(data, 1, 30) for _ in range(data.draw(st.integers(1, 2))))
    dy, saved = array(data, shape, dtype), array(data, shape, dtype)

    def check(call, out):
        dy, saved = plain(call.args[0]), plain(call.args[1])
        if _finite_inputs(dy, saved) and name in ("relu", "leaky_relu", "sigmoid", "tanh"):
            alpha = call.kwargs.get("alpha", 0.01)
            ref = R.activation_backward(dy, saved, name, alpha)
            close(out, ref, _rtol(out.dtype) * 4,
                  np.abs(dy) * (1 + np.abs(saved)) ** 2 * max(1.0, alpha), name)
    return Call("activation_backward", K.activation_backward, [dy, saved, name],
                dict(alpha=0.05), check)


def build_softmax(data, dtype):
    rows, classes = dims(data), dims(data, 1, 300)
    logits = array(data, (rows, classes), dtype)
    labels = guard.copy(np.asarray(data.draw(st.lists(st.integers(0, classes - 1),
                                                      min_size=rows, max_size=rows)), np.int64))

    def check(call, out):
        logits, labels = plain(call.args[0]), np.asarray(call.args[1])
        if _finite_inputs(logits) and np.abs(logits).max() < 1e4:
            losses, dlogits = R.softmax_cross_entropy(logits, labels)
            close(out[0], losses, _rtol(out[0].dtype, classes), 1.0, "losses")
            close(out[1], dlogits, _rtol(out[1].dtype, classes), 1.0, "dlogits")
    return Call("softmax_cross_entropy", K.softmax_cross_entropy, [logits, labels], {}, check)


def _elementwise_loss(fn, reference, name):
    def build(data, dtype):
        shape = tuple(dims(data, 1, 30) for _ in range(data.draw(st.integers(1, 2))))
        p, t = array(data, shape, dtype), array(data, shape, dtype)

        def check(call, out):
            p, t = plain(call.args[0]), plain(call.args[1])
            if _finite_inputs(p, t) and np.abs(p).max() < 50 and np.abs(t).max() < 50:
                for got, ref in zip(out, reference(p, t)):
                    close(got, ref, _rtol(got.dtype) * 8, 1 + np.abs(p) + np.abs(t), name)
        return Call(name, fn, [p, t], {}, check)
    return build


def build_dropout(data, dtype):
    shape = tuple(dims(data, 1, 30) for _ in range(data.draw(st.integers(0, 3))))
    x = array(data, shape, dtype)
    backward = data.draw(st.booleans())
    p = data.draw(st.sampled_from([0.0, 0.1, 0.5, 0.9]))
    seed = data.draw(st.integers(0, 2 ** 64 - 1))
    offset = data.draw(st.integers(0, 2 ** 64 - 1))

    def check(call, out):
        x = np.asarray(call.args[0])
        ref = R.dropout(x.astype(np.float64), call.args[1], call.args[2], call.kwargs["offset"])
        close(out, ref, _rtol(out.dtype), what="dropout")
    fn = K.dropout_backward if backward else K.dropout
    return Call(fn.__name__, fn, [x, p, seed], dict(offset=offset), check)


def build_bias_grad(data, dtype):
    rows, cols = dims(data, 1, 300), dims(data)
    dy = array(data, (rows, cols), dtype)

    def check(call, out):
        dy = plain(call.args[0])
        if _finite_inputs(dy):
            close(out, R.bias_grad(dy), _rtol(out.dtype, rows), np.abs(dy).sum(0), "bias_grad")
    return Call("bias_grad", K.bias_grad, [dy], {}, check)


def _optimizer_reference(name, param, grad, states, hyper):
    """The reference step in float64 on copies; returns (param, states)."""
    p, g = plain(param), plain(grad)
    s = {k: plain(v) for k, v in states.items()}
    if name == "sgd":
        new_p, buf = R.sgd_step(p, g, s["momentum_buf"], hyper["lr"], hyper["momentum"],
                                hyper["dampening"], hyper["weight_decay"], hyper["nesterov"],
                                hyper["step"])
        return new_p, {"momentum_buf": buf}
    if name == "adagrad":
        new_p, total = R.adagrad_step(p, g, s["state_sum"], hyper["lr"], hyper["lr_decay"],
                                      hyper["weight_decay"], hyper["eps"], hyper["step"])
        return new_p, {"state_sum": total}
    if name == "rmsprop":
        new_p, sq, avg, buf = R.rmsprop_step(
            p, g, s["square_avg"], hyper["lr"], hyper["alpha"], hyper["eps"],
            hyper["weight_decay"], hyper["momentum"], hyper["centered"], s["grad_avg"],
            s["momentum_buf"])
        return new_p, {"square_avg": sq, "grad_avg": avg, "momentum_buf": buf}
    new_p, m, v = R.adam_step(p, g, s["exp_avg"], s["exp_avg_sq"], hyper["lr"], hyper["beta1"],
                              hyper["beta2"], hyper["eps"], hyper["weight_decay"], hyper["step"])
    return new_p, {"exp_avg": m, "exp_avg_sq": v}


def build_optimizer(data, dtype, count=None):
    name = data.draw(st.sampled_from(sorted(OPTIMIZERS)))
    fn, state_names, hyper = OPTIMIZERS[name]
    count = data.draw(st.integers(1, 4)) if count is None else count
    listed = count > 1 or data.draw(st.booleans())
    shapes = [tuple(dims(data, 1, 20) for _ in range(data.draw(st.integers(1, 2))))
              for _ in range(count)]
    params = [array(data, s, dtype) for s in shapes]
    grads = [array(data, s, dtype) for s in shapes]
    states = {k: [guard.copy(np.abs(_values(data, s, dtype)) if "sq" in k or k in
                             ("state_sum", "square_avg") else _values(data, s, dtype))
                  for s in shapes] for k in state_names}
    if name == "rmsprop":  # a square average at least the square of the gradient average
        for sq, avg in zip(states["square_avg"], states["grad_avg"]):
            sq[...] = avg * avg + np.abs(sq)

    return optimizer_call(dict(name=name, state_names=state_names, listed=listed,
                               params=params, grads=grads, states=states))


def optimizer_call(opt):
    """The call of opt's step over its (possibly edited) lists, checked against the
    reference from the values they hold now."""
    fn, state_names, hyper = OPTIMIZERS[opt["name"]]
    name, params, grads, states = opt["name"], opt["params"], opt["grads"], opt["states"]

    def pick(values):
        return values if opt["listed"] or len(values) > 1 else values[0]
    positional = [pick(states[k]) for k in state_names if k not in KEYWORD_STATES]
    keyword = {k: pick(states[k]) for k in state_names if k in KEYWORD_STATES}
    snapshot = []

    def arrays_of(call):
        """(params, grads, {state: list}) as the call passes them now, lists or not."""
        def listed(value):
            return list(value) if isinstance(value, (list, tuple)) else [value]
        positional_names = [k for k in state_names if k not in KEYWORD_STATES]
        found = {k: listed(v) for k, v in zip(positional_names, call.args[2:])}
        found.update({k: listed(call.kwargs[k]) for k in state_names if k in KEYWORD_STATES})
        return listed(call.args[0]), listed(call.args[1]), found

    def prepare():  # the values as they are when the call is made
        ps, gs, ss = arrays_of(call)
        snapshot[:] = [(np.array(p), np.array(g), {k: np.array(ss[k][i]) for k in ss})
                       for i, (p, g) in enumerate(zip(ps, gs))]

    def check(call, out):
        ps, _, ss = arrays_of(call)
        dtype = ps[0].dtype
        for i, saved in enumerate(snapshot):
            p0, g0, s0 = saved
            if not _finite_inputs(p0, g0, *s0.values()):
                continue
            ref_p, ref_s = _optimizer_reference(name, p0, g0, s0, call.kwargs)
            terms = 1 + np.abs(p0) + np.abs(ref_p - p0)
            close(ps[i], ref_p, _rtol(dtype) * 50, terms, f"{name} param {i}")
            for key, value in ref_s.items():
                if value is not None:
                    close(ss[key][i], value, _rtol(dtype) * 50, 1 + np.abs(value),
                          f"{name} {key} {i}")
    call = Call(f"{name}_step", fn, [pick(params), pick(grads), *positional],
                {**keyword, **hyper}, check, inplace=("param",))
    call.optimizer, call.prepare = opt, prepare
    return call


BUILDERS = {
    "matmul": build_matmul, "linear": build_linear, "activation": build_activation,
    "activation_backward": build_activation_backward, "softmax_cross_entropy": build_softmax,
    "binary_cross_entropy_with_logits": _elementwise_loss(
        K.binary_cross_entropy_with_logits, R.binary_cross_entropy_with_logits,
        "binary_cross_entropy_with_logits"),
    "mse": _elementwise_loss(K.mse, R.mse, "mse"), "dropout": build_dropout,
    "bias_grad": build_bias_grad, "optimizer": build_optimizer,
}


def valid_call(data):
    builder = data.draw(st.sampled_from(sorted(BUILDERS)), label="function")
    dtype = data.draw(st.sampled_from([F32, F64]), label="dtype")
    return BUILDERS[builder](data, dtype)


# ---- the categories ----

def _array_slots(call):
    """(container, index) of every array argument of a call (lists' entries included)."""
    slots = []
    for i, value in enumerate(call.args):
        if isinstance(value, np.ndarray):
            slots.append((call.args, i))
        elif isinstance(value, list):
            slots += [(value, j) for j, v in enumerate(value) if isinstance(v, np.ndarray)]
    for key, value in call.kwargs.items():
        if isinstance(value, np.ndarray):
            slots.append((call.kwargs, key))
        elif isinstance(value, list):
            slots += [(value, j) for j, v in enumerate(value) if isinstance(v, np.ndarray)]
    return slots


def _pick_slot(data, call):
    slots = _array_slots(call)
    return slots[data.draw(st.integers(0, len(slots) - 1), label="which array")]


def cat_shapes(data):
    """An array argument reshaped: 0-size, 0-d, a dimension more or less, another length."""
    call = valid_call(data)
    container, key = _pick_slot(data, call)
    a = container[key]
    how = data.draw(st.sampled_from(["empty", "0-d", "extra dim", "drop dim", "resize"]))
    if how == "empty":
        shape = a.shape[:-1] + (0,) if a.ndim else (0,)
    elif how == "0-d":
        shape = ()
    elif how == "extra dim":
        shape = a.shape + (data.draw(st.integers(1, 3)),)
    elif how == "drop dim":
        shape = a.shape[1:]
    else:
        shape = tuple(max(0, n + data.draw(st.integers(-2, 2))) for n in a.shape)
    container[key] = array(data, shape, a.dtype)
    return call


def cat_dtypes(data):
    call = valid_call(data)
    container, key = _pick_slot(data, call)
    a = container[key]
    dtype = data.draw(st.sampled_from(BAD_DTYPES + [np.float32, np.float64]))
    with np.errstate(all="ignore"):
        container[key] = guard.copy(a.astype(dtype)) if np.dtype(dtype) != object \
            else a.astype(object)
    return call


def cat_subclasses(data):
    """np.matrix, masked arrays, memmaps, lists, tuples and Python scalars in array slots."""
    call = valid_call(data)
    container, key = _pick_slot(data, call)
    a = container[key]
    kind = data.draw(st.sampled_from(["matrix", "masked", "memmap", "list", "tuple", "scalar"]))
    if kind == "matrix" and a.ndim == 2:
        container[key] = np.asmatrix(a)
    elif kind == "masked":
        container[key] = np.ma.masked_array(a, mask=np.asarray(a) > 0)
    elif kind == "memmap":
        import tempfile
        handle = tempfile.NamedTemporaryFile(suffix=".dat")
        mm = np.memmap(handle.name, dtype=a.dtype, mode="w+", shape=a.shape or (1,))
        mm[...] = a
        mm._handle = handle  # the file lives as long as the map
        container[key] = mm if a.shape else mm.reshape(())
    elif kind == "list":
        container[key] = a.tolist()
    elif kind == "tuple":
        container[key] = tuple(a.tolist()) if a.ndim else a.item()
    else:
        container[key] = float(a.reshape(-1)[0]) if a.size else 0.0
    return call


def cat_views(data):
    """Non-contiguous, reversed, read-only and zero-stride (broadcast) views."""
    call = valid_call(data)
    container, key = _pick_slot(data, call)
    a = container[key]
    kind = data.draw(st.sampled_from(["strided", "reversed", "transposed", "readonly",
                                      "broadcast"]))
    if kind == "strided":
        big = array(data, (a.shape[0] * 2,) + a.shape[1:] if a.ndim else (2,), a.dtype)
        view = big[::2] if a.ndim else big[0:1].reshape(())
        view[...] = a
    elif kind == "reversed":
        view = guard.copy(a[::-1] if a.ndim else a)[::-1] if a.ndim else a
    elif kind == "transposed":
        view = guard.copy(np.ascontiguousarray(a.T)).T
    elif kind == "readonly":
        view = guard.copy(a)
        view.flags.writeable = False
    else:
        row = array(data, a.shape[1:] if a.ndim else (), a.dtype)
        view = np.broadcast_to(row, a.shape)
    container[key] = view
    return call


def cat_aliasing(data):
    """Optimizer steps whose arrays share memory: a state that is the param or another
    state, a grad overlapping its param, the same param twice in a list."""
    call = build_optimizer(data, data.draw(st.sampled_from([F32, F64])))
    opt = call.optimizer
    kind = data.draw(st.sampled_from(["state is param", "state is state", "grad overlaps",
                                      "param twice"]))
    params, grads, states = opt["params"], opt["grads"], opt["states"]
    if kind == "state is param":
        states[opt["state_names"][0]][0] = params[0]
    elif kind == "state is state" and len(opt["state_names"]) > 1:
        states[opt["state_names"][1]][0] = states[opt["state_names"][0]][0]
    elif kind == "grad overlaps":
        buf = array(data, (params[0].size + 3,), params[0].dtype)
        params[0] = buf[3:].reshape(params[0].shape)
        grads[0] = buf[:params[0].size].reshape(params[0].shape)
    else:
        params.append(params[0])
        grads.append(grads[0])
        for values in states.values():
            values.append(guard.copy(values[0]))
    return optimizer_call(opt)


def cat_special(data):
    """NaN, infinities, signed zeros, subnormals and the largest floats in every input."""
    builder = data.draw(st.sampled_from(sorted(BUILDERS)), label="function")
    dtype = data.draw(st.sampled_from([F32, F64]))
    call = BUILDERS[builder](data, dtype)
    for container, key in _array_slots(call):
        a = container[key]
        if a.dtype.kind == "f":
            a[...] = _values(data, a.shape, a.dtype, special=True)
    return call


BAD_VALUES = [float("nan"), float("inf"), -1.0, 1e39, 1e300, 10 ** 400, True, "0.1", None,
              1e-50, 2.0, 0.0, 1.5, -(2 ** 70)]
HYPER = {"lr", "momentum", "dampening", "weight_decay", "eps", "lr_decay", "alpha", "beta1",
         "beta2", "step", "p", "seed", "offset"}


def cat_hyper(data):
    """A bad hyper-parameter: NaN, infinity, out of range, finite in float64 but not in
    float32, rounding to 0, the wrong type."""
    call = valid_call(data)
    if call.name in ("dropout", "dropout_backward"):
        slot = data.draw(st.sampled_from(["p", "seed", "offset"]))
        value = data.draw(st.sampled_from(BAD_VALUES + [2 ** 64, -1]))
        if slot == "p":
            call.args[1] = value
        elif slot == "seed":
            call.args[2] = value
        else:
            call.kwargs["offset"] = value
        return call
    keys = [k for k in call.kwargs if k in HYPER or k in ("alpha",)]
    if call.name == "activation":
        keys = ["alpha"]
    if not keys:
        call.kwargs["impl"] = data.draw(st.sampled_from(["gpu", None, 3, "cuda-tiled"]))
        return call
    key = data.draw(st.sampled_from(keys))
    call.kwargs[key] = data.draw(st.sampled_from(BAD_VALUES))
    return call


def cat_lists(data):
    """The foreach form's defects: None entries, lengths that differ, a tuple or an array
    where a list belongs, an empty list, dtypes that differ between entries."""
    call = build_optimizer(data, data.draw(st.sampled_from([F32, F64])),
                           count=data.draw(st.integers(1, 3)))
    opt = call.optimizer
    opt["listed"] = True
    kind = data.draw(st.sampled_from(["None state", "short grads", "tuple", "array for list",
                                      "empty", "mixed dtypes", "None grad"]))
    if kind == "None state":
        name = data.draw(st.sampled_from(opt["state_names"]))
        opt["states"][name][-1] = None
    elif kind == "short grads":
        opt["grads"].pop()
    elif kind == "mixed dtypes":
        opt["params"][-1] = guard.copy(opt["params"][-1].astype(np.float64 if
                                       opt["params"][-1].dtype == F32 else np.float32))
    elif kind == "None grad":
        opt["grads"][0] = None
    rebuilt = optimizer_call(opt)
    if kind == "tuple":
        rebuilt.args[0] = tuple(rebuilt.args[0])
    elif kind == "array for list":
        rebuilt.args[1] = opt["grads"][0]
    elif kind == "empty":
        rebuilt.args[0] = []
    return rebuilt


# ---- nn entry points ----

def cat_nn(data):
    """Layers, functional ops, optimizers and checkpoints through the nn API."""
    kind = data.draw(st.sampled_from(["linear layer", "functional", "optimizer step",
                                      "load_state_dict", "dataloader"]))
    return NN_CALLS[kind](data)


def _nn_linear(data):
    args = [data.draw(st.sampled_from([0, 1, 3, -2, 2.5, True, "4"])),
            data.draw(st.sampled_from([1, 5, 0, None]))]
    kwargs = dict(activation=data.draw(st.sampled_from([None, "relu", "swish", 3])),
                  dtype=data.draw(st.sampled_from([np.float32, np.float64, np.int32, "float16",
                                                   None])),
                  negative_slope=data.draw(st.sampled_from([0.01, float("nan"), 1e39])))
    state_before = kg.get_rng_state()

    def check(call, out):
        assert isinstance(out, kg.nn.Linear)
    call = Call("nn.Linear", kg.nn.Linear, args, kwargs, check)
    call.rng_before = state_before
    return call


def _nn_functional(data):
    from kernelgrad.nn import functional as F
    name = data.draw(st.sampled_from(["cross_entropy", "mse_loss", "dropout", "linear",
                                      "binary_cross_entropy_with_logits", "relu",
                                      "binary_cross_entropy", "one_hot"]))
    x = kg.Tensor(array(data, (dims(data, 1, 6), dims(data, 1, 6)),
                        data.draw(st.sampled_from([F32, F64]))), requires_grad=True)
    other = data.draw(st.sampled_from(["labels", "same", "column", "bad"]))
    if other == "labels":
        y = np.zeros(x.shape[0], np.int64)
    elif other == "same":
        y = np.zeros(x.shape, x.dtype)
    elif other == "column":
        y = np.zeros((x.shape[0], 1), x.dtype)
    else:
        y = np.full(x.shape[0], x.shape[1] + 3)
    fn = getattr(F, name)
    args = {"cross_entropy": [x, y], "mse_loss": [x, y], "dropout": [x, data.draw(
        st.sampled_from([0.5, 1.0, -0.1, float("nan")]))], "linear": [x, kg.Tensor(np.ones(
            (x.shape[1], 2), x.dtype))], "binary_cross_entropy_with_logits": [x, y],
        "relu": [x], "binary_cross_entropy": [x, y], "one_hot": [y]}[name]
    call = Call(f"F.{name}", fn, args, {}, lambda call, out: None)
    call.rng_before = kg.get_rng_state()
    return call


def _nn_optimizer(data):
    model = kg.nn.Sequential(kg.nn.Linear(3, 4), kg.nn.Linear(4, 2))
    name = data.draw(st.sampled_from(["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]))
    opt = getattr(kg.optim, name)(model.parameters(), lr=0.01)
    for p in model.parameters():
        p.grad = np.ones(p.shape, p.dtype)
    opt.step()  # every parameter has state and a step count
    params = list(model.parameters())
    target = params[data.draw(st.integers(0, len(params) - 1))]
    bad = data.draw(st.sampled_from(["float16", "shape", "nan lr", "list grad", "matrix"]))
    if bad == "float16":
        target.grad = np.ones(target.shape, np.float16)
    elif bad == "shape":
        target.grad = np.ones(target.shape + (2,), np.float32)
    elif bad == "nan lr":
        opt.param_groups[0]["lr"] = float("nan")
    elif bad == "list grad":
        target.grad = np.ones(target.shape, np.float32).tolist()
    else:
        target.grad = np.asmatrix(np.ones(target.shape, np.float32).reshape(target.shape[0], -1))
    call = Call(f"{name}.step", opt.step, [], {}, lambda call, out: None)
    call.watch = [p.data for p in params] + [a for s in opt.state.values()
                                             for a in s.values() if isinstance(a, np.ndarray)]
    call.steps = {k: v["step"] for k, v in opt.state.items()}
    call.state = opt.state
    return call


def _nn_load_state_dict(data):
    model = kg.nn.Sequential(kg.nn.Linear(2, 3), kg.nn.Linear(3, 2))
    state = {k: v.copy() for k, v in model.state_dict().items()}
    key = data.draw(st.sampled_from(sorted(state)))
    state[key] = data.draw(st.sampled_from([
        np.array(["a"] * state[key].size).reshape(state[key].shape),
        np.array([None] * state[key].size, dtype=object).reshape(state[key].shape),
        state[key].astype(np.complex64), np.zeros(state[key].shape + (1,)),
        state[key].tolist(), state[key].astype(np.float64)]))
    call = Call("load_state_dict", model.load_state_dict, [state], {}, lambda call, out: None)
    call.watch = [p.data for p in model.parameters()]
    return call


def _nn_dataloader(data):
    arrays = [data.draw(st.sampled_from([np.zeros((5, 2)), np.array(3.0), np.zeros((4, 2)),
                                         [1, 2, 3, 4, 5], np.zeros((0, 2))]))]
    kwargs = dict(batch_size=data.draw(st.sampled_from([1, 0, -1, 2.5, True, 64])),
                  drop_last=data.draw(st.booleans()))
    return Call("DataLoader", kg.data.DataLoader, arrays, kwargs, lambda call, out: list(out))


NN_CALLS = {"linear layer": _nn_linear, "functional": _nn_functional,
            "optimizer step": _nn_optimizer, "load_state_dict": _nn_load_state_dict,
            "dataloader": _nn_dataloader}

CATEGORIES = {"shapes": cat_shapes, "dtypes": cat_dtypes, "subclasses": cat_subclasses,
              "views": cat_views, "aliasing": cat_aliasing, "special values": cat_special,
              "hyper-parameters": cat_hyper, "lists": cat_lists, "nn": cat_nn}
