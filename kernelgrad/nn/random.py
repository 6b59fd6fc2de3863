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


def get_rng_state():
    """The library's random state (seed, dropout offset, initializer draws), a dict of ints
    that kg.save stores and set_rng_state restores: a resumed run draws what it would have."""
    return dict(_state)


def set_rng_state(state):
    try:
        new = {key: v.uint64(state[key], key) for key in _state}
    except (KeyError, TypeError):
        raise ValueError(f"an rng state is a dict with {sorted(_state)}, got {state!r}") \
            from None
    _state.update(new)


_stream_key = {"rank": 0, "key": None}  # data-parallel ranks draw different masks


def set_stream_rank(rank):
    """Rank r > 0 of a data-parallel job keys its dropout with the seed mixed with r (fixed,
    so runs repeat); rank 0 keeps the seed itself, as a single process has it."""
    _stream_key["rank"] = int(rank)
    _stream_key["key"] = None


def dropout_stream():
    """(key, offset) the next dropout call takes; it calls advance_dropout_stream() once it
    has succeeded, so a failed call leaves the offset where it was. The key is the seed
    (for rank r > 0 of a data-parallel job, the seed mixed with r)."""
    seed, rank = _state["seed"], _stream_key["rank"]
    if rank == 0:
        return seed, _state["dropout_offset"]
    if _stream_key["key"] is None or _stream_key["key"][0] != seed:
        mixed = int(np.random.default_rng([seed, 0x6B67, rank]).integers(0, 2 ** 63))
        _stream_key["key"] = (seed, mixed)
    return _stream_key["key"][1], _state["dropout_offset"]


def advance_dropout_stream():
    _state["dropout_offset"] += 1


def derived_seed(tag):
    """A seed fixed by the library seed and `tag` alone (no draw is taken): fit's shuffle
    uses one, so a run resumed at epoch e shuffles as the uninterrupted run did."""
    return int(np.random.default_rng([_state["seed"], tag]).integers(0, 2 ** 63))


def next_seed():
    """A seed for a component that draws its own numbers (a DataLoader's shuffle), fixed by
    the library seed and how many draws came before."""
    return int(init_generator().integers(0, 2 ** 63))


def init_generator():
    """A NumPy generator for one layer's initial weights, fixed by the seed and call count."""
    draws = _state["init_draws"]
    _state["init_draws"] = draws + 1
    return np.random.default_rng([_state["seed"], draws])
