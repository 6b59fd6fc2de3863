"""save/load of state dicts as .npz: written to a temporary file and renamed (a crash
never leaves half a checkpoint), read back with allow_pickle=False."""
import os
import tempfile
from collections import OrderedDict

import numpy as np

from ..devices import to_numpy
from .modules import Module
from .tensor import Tensor


def save(obj, path):
    """Write a Module's state_dict, or a mapping of names to arrays/Tensors, to `path`."""
    state = obj.state_dict() if isinstance(obj, Module) else obj
    if not hasattr(state, "items"):
        raise TypeError(f"save() takes a Module or a dict of arrays, got {type(obj).__name__}")
    arrays = {}
    for name, value in state.items():
        array = to_numpy(value.data if isinstance(value, Tensor) else value)
        if array.dtype == object:
            raise TypeError(f"save(): {name!r} is not a numeric array")
        arrays[str(name)] = array
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".kernelgrad-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load(path):
    """The state dict saved at `path`, as an ordered dict of NumPy arrays."""
    with np.load(path, allow_pickle=False) as archive:
        return OrderedDict((name, archive[name]) for name in archive.files)
