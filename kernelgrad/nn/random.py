"""The library's random state: one seed drives parameter initialization and dropout.

Dropout draws no random numbers on the host: each call takes the next Philox offset
under the current seed, so the kernel regenerates its mask in backward from
(seed, offset), and two runs after the same `manual_seed` are identical bit for bit.
"""
import numpy as np

from ..kernels import checks as v

DEFAULT_SEED = 0
_state = {"seed": DEFAULT_SEED, "dropout_offset": 0, "init_draws": 0}


def manual_seed(seed):
    """Reset the seed for initializers and dropout (like torch.manual_seed)."""
    _state["seed"] = v.uint64(seed, "seed")
    _state["dropout_offset"] = 0
    _state["init_draws"] = 0


def initial_seed():
    return _state["seed"]


def next_dropout_stream():
    """(seed, offset) for one dropout call; every call gets a fresh Philox offset."""
    offset = _state["dropout_offset"]
    _state["dropout_offset"] = offset + 1
    return _state["seed"], offset


def init_generator():
    """A NumPy generator for one layer's initial weights, fixed by the seed and call count."""
    draws = _state["init_draws"]
    _state["init_draws"] = draws + 1
    return np.random.default_rng([_state["seed"], draws])
