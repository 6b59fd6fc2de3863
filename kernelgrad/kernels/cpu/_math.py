"""Scalar math that LLVM can vectorize: exp, expm1, tanh, sigmoid and the activations.

libm's exp is a call LLVM cannot vectorize (Numba's SVML path needs a patched LLVM this
build lacks), so exp is written out: n = round(x / ln 2), r = x - n ln 2 in two parts
(Cody-Waite), exp(r) by a polynomial on |r| <= ln2 / 2 (float32: degree 6, fitted;
float64: Taylor, degree 12), and 2^n built from its bits. Error: about 1 ulp. Results
saturate to 0 and inf outside the finite range; NaN propagates.
"""
import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from .._spec import ACT_GELU, ACT_LEAKY_RELU, ACT_RELU, ACT_SIGMOID, ACT_TANH
from ._jit import typed


def _bitcast(source, target):
    """An intrinsic reinterpreting a `source` scalar's bits as a `target` scalar."""
    @intrinsic
    def cast(typingctx, value):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(target))
        return target(source), codegen
    return cast


_float32_from_bits = _bitcast(types.int32, types.float32)
_float64_from_bits = _bitcast(types.int64, types.float64)
_int32_from_float = _bitcast(types.float32, types.int32)
_int64_from_float = _bitcast(types.float64, types.int64)


def horner(coeffs):
    """p(x) = coeffs[0] + coeffs[1] x + ... as an inlined Horner chain of exactly that
    degree (a loop over a padded tuple would spend multiply-adds on its zeros)."""
    lines = ["def p(x):", f"    y = c[{len(coeffs) - 1}]"]
    lines += [f"    y = y * x + c[{k}]" for k in range(len(coeffs) - 2, -1, -1)]
    lines.append("    return y")
    namespace = {"c": tuple(coeffs)}
    exec("\n".join(lines), namespace)
    return njit(inline="always")(namespace["p"])


# exp(r) on |r| <= ln2 / 2 for float32: degree 6, fitted for relative error (Lawson's
# iteration toward minimax, c0 = 1 fixed): 2e-9 in exact arithmetic, so the float32
# rounding of the Horner chain is the whole error. Taylor needs degree 7 for the same.
_EXP_FLOAT32 = (1.0, 1.0, 0.4999999403953552, 0.16666431725025177, 0.04166800156235695,
                0.00837415549904108, 0.0013843653723597527)


def _exp_factory(T):
    single = T is np.float32
    log2e = T(1.4426950408889634)
    ln2_hi = T(0.693145751953125 if single else 0.6931471803691238)
    ln2_lo = T(1.428606765330187e-06 if single else 1.9082149292705877e-10)
    if single:
        coeffs = [T(c) for c in _EXP_FLOAT32]
    else:
        coeffs = [T(1.0 / np.prod(np.arange(1, k + 1, dtype=np.float64))) for k in range(13)]
    poly = horner(coeffs)
    mantissa = 23 if single else 52
    bias = 127 if single else 1023
    # x * log2e + magic rounds to an integer in the low mantissa bits (the ulp of magic is
    # 1), with the exponent bias already added: those bits shifted into the exponent field
    # are 2^n, and magic subtracted back gives n. One FMA, one subtraction and one shift
    # where floor, convert, add and shift were four conversions and integer operations.
    magic = T(1.5 * 2.0 ** mantissa + bias)
    # above hi, n = 2^(exponent bits) - 1 - bias, whose scale is inf: x is clamped to hi
    # and the product overflows to inf; below lo the result is 0 (a select). Between
    # them n + bias stays in [1, 2^bits - 1] (1: the smallest normal, not a subnormal).
    hi = T(88.8 if single else 709.8)
    lo = np.nextafter(T(np.log(np.finfo(T).tiny)), T(-np.inf))  # below ln(smallest normal)
    zero = T(0)
    if single:
        def scale(k):
            return _float32_from_bits(_int32_from_float(k) << np.int32(mantissa))
    else:
        def scale(k):
            return _float64_from_bits(_int64_from_float(k) << np.int64(mantissa))
    scale = njit(inline="always")(scale)

    def fast_exp(x):
        # comparisons, not min/max, so that NaN passes through
        c = hi if x > hi else x
        k = c * log2e + magic
        n = k - magic
        r = c - n * ln2_hi
        r = r - n * ln2_lo
        result = poly(r) * scale(k)
        return zero if x < lo else result
    return fast_exp


fast_exp = typed(_exp_factory)


@typed
def cast_like(T):
    """value converted to the type of `like`."""
    def cast_like_(like, value):
        return T(value)
    return cast_like_


@typed
def fast_expm1(T):
    """exp(x) - 1 without cancellation near 0: a Taylor series below |x| = 0.35."""
    degree = 8 if T is np.float32 else 15
    coeffs = [T(1.0 / np.prod(np.arange(1, k + 1, dtype=np.float64))) for k in range(degree + 1)]
    poly = horner(coeffs[1:])  # series = x (1 + x/2 + x^2/6 + ...): -0 stays -0
    one, small = T(1), T(0.35)

    def expm1_(x):
        series = poly(x) * x
        # Both sides computed, then selected: a branch around exp would block vectorizing.
        direct = fast_exp(x) - one
        return series if abs(x) < small else direct
    return expm1_


# tanh(x) ~ x P(x^2) / Q(x^2) on [-7.905, 7.905], the float32 minimax fit Eigen uses
# (generic_fast_tanh_float): max relative error 3.9e-7 over [-9, 9] in float32 arithmetic,
# one division and no exp, so it vectorizes to a few FMAs per element.
_TANH_P = (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05,
           5.12229709037114e-08, -8.60467152213735e-11, 2.00018790482477e-13,
           -2.76076847742355e-16)
_TANH_Q = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04,
           1.19825839466702e-06)


def _tanh_rational_float32():
    T = np.float32
    p0, p1, p2, p3, p4, p5, p6 = (T(c) for c in _TANH_P)
    q0, q1, q2, q3 = (T(c) for c in _TANH_Q)
    clamp, tiny = T(7.90531110763549805), T(0.0004)

    def tanh_(x):
        # comparisons, not min/max, so that NaN passes through
        c = clamp if x > clamp else (-clamp if x < -clamp else x)
        c2 = c * c
        p = (((((p6 * c2 + p5) * c2 + p4) * c2 + p3) * c2 + p2) * c2 + p1) * c2 + p0
        q = ((q3 * c2 + q2) * c2 + q1) * c2 + q0
        t = c * p / q
        return x if abs(x) < tiny else t
    return tanh_


@typed
def fast_tanh(T):
    """float32: the rational fit above. float64: tanh(|x|) = e / (e + 2), e = expm1(2|x|),
    with |x| capped where tanh rounds to 1."""
    if T is np.float32:
        return _tanh_rational_float32()
    two, cap = T(2), T(19)

    def tanh_(x):
        a = abs(x)
        a = cap if a > cap else a
        e = fast_expm1(two * a)
        t = e / (e + two)
        return t if x >= 0 else -t
    return tanh_


@typed
def fast_sigmoid(T):
    one = T(1)

    def sigmoid_(x):
        return one / (one + fast_exp(-x))
    return sigmoid_


# gelu's tanh approximation: u = c (x + a x^3), c = sqrt(2 / pi)
_GELU_2C, _GELU_A = 2 * np.sqrt(2.0 / np.pi), 0.044715


@typed
def activate(T):
    """act(x) for the activation id (ACT_*); alpha is leaky_relu's negative slope."""
    zero, one = T(0), T(1)
    two_c, two_ca = T(_GELU_2C), T(_GELU_2C * _GELU_A)

    def activate_(x, act, alpha):
        if act == ACT_RELU:
            return zero if x <= zero else x  # NaN passes through
        if act == ACT_SIGMOID:
            return fast_sigmoid(x)
        if act == ACT_TANH:
            return fast_tanh(x)
        if act == ACT_LEAKY_RELU:
            return alpha * x if x <= zero else x
        if act == ACT_GELU:
            # 0.5 x (1 + tanh u) = x sigmoid(2u) = x / (1 + exp(-2u)): the same function,
            # without cancellation; 2u = x (2c + 2ca x^2), one multiply-add from x^2
            return x / (one + fast_exp(-(x * (two_c + two_ca * (x * x)))))
        return x
    return activate_


@typed
def activate_grad(T):
    """dL/dx from dL/dy and `saved`: the output y, or for gelu the input x."""
    zero, one = T(0), T(1)
    two_c, two_ca, six_ca = T(_GELU_2C), T(_GELU_2C * _GELU_A), T(3 * _GELU_2C * _GELU_A)

    def activate_grad_(dy, saved, act, alpha):
        if act == ACT_RELU:
            return dy if saved > zero else zero
        if act == ACT_SIGMOID:
            return dy * saved * (one - saved)
        if act == ACT_TANH:
            # (1 - y)(1 + y), not 1 - y*y: near |y| = 1 the rounding of y*y would be the
            # whole answer (1 - y is exact there)
            return dy * ((one - saved) * (one + saved))
        if act == ACT_LEAKY_RELU:
            return dy if saved > zero else alpha * dy
        if act == ACT_GELU:
            x = saved
            x2 = x * x
            s = fast_sigmoid(x * (two_c + two_ca * x2))
            ds = s * (one - s)
            # where ds is 0 (|x| past ~5) so is the term; x * dinner alone may be inf
            # there (|x| >= ~5e19 in float32), and inf * 0 would make the gradient NaN
            dinner = two_c + six_ca * x2
            return dy * (s + (zero if ds == zero else x * ds * dinner))
        return dy
    return activate_grad_
