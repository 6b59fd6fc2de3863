"""kg.save / kg.load: checkpoints in the safetensors format.

A checkpoint is any tree of dicts, lists and tuples whose leaves are arrays (NumPy, CuPy,
Tensors, NumPy scalars), numbers, strings, booleans or None: a model's state_dict, or a
whole training state ({"model": ..., "optimizer": ..., "epoch": 5, "rng": ...}). Arrays go
into the safetensors file under dotted names (model.0.weight); the tree itself, with the
non-array values and every key's type, is JSON in the file's metadata, so other tools read
the tensors and `load` gives back the same tree. Nothing is ever unpickled.

Saving is atomic: the bytes go to a temporary file beside the target, which is flushed,
fsynced and renamed over it, and the directory is fsynced; a failure removes the
temporary file, and a later save removes any left by a killed process. The file takes the
mode the umask gives; a symlink is followed and its target replaced. `load` checks the
header against the file's size before it allocates anything and reads the .npz
checkpoints of earlier versions too.
"""
import glob
import json
import math
import os
import re
import tempfile
from collections import OrderedDict

import numpy as np

from ..devices import is_cuda_array, to_numpy
from .tensor import Tensor

FORMAT = "kernelgrad-checkpoint-1"
MAX_HEADER = 100 << 20  # a header larger than this is not a checkpoint
# the dtypes safetensors stores, by its names
DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
          "I32": np.int32, "I16": np.int16, "I8": np.int8, "U64": np.uint64, "U32": np.uint32,
          "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_}


class CheckpointError(ValueError):
    """A file that is not a checkpoint kg.load can read, or a tree kg.save cannot store."""


# ---- saving -------------------------------------------------------------------------------

def _encode(value, where, tensors):
    """The JSON description of `value`; its arrays are added to `tensors`."""
    if isinstance(value, (Tensor, np.ndarray, np.generic)) or is_cuda_array(value):
        kind = ("tensor" if isinstance(value, Tensor) else "scalar"
                if isinstance(value, np.generic) else "array")
        data = value.data if isinstance(value, Tensor) else value
        array = np.array(to_numpy(data), order="C")  # a copy: ascontiguousarray makes 0-d 1-d
        if array.dtype.type not in DTYPES.values():
            raise CheckpointError(f"cannot save {where or 'the value'}: dtype {array.dtype} "
                                  "(checkpoints hold bool, integer and float arrays)")
        name = base = where or "value"
        n = 1
        while name in tensors:
            n += 1
            name = f"{base}#{n}"
        tensors[name] = array.reshape(-1) if array.ndim == 0 else array
        out = {"array": name, "kind": kind, "shape": list(array.shape)}
        if kind == "tensor" and value.requires_grad:
            out["requires_grad"] = True
        return out
    if value is None or isinstance(value, (bool, str)):
        return {"value": value}
    if isinstance(value, int):
        return {"value": value}
    if isinstance(value, float):
        return {"value": value} if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not (key is None or isinstance(key, (str, int, bool)) or
                    (isinstance(key, float) and math.isfinite(key))):
                raise CheckpointError(f"cannot save the key {key!r} of {where or 'the tree'}: "
                                      "keys are strings, integers, finite floats, bools or None")
            items.append([key, _encode(item, f"{where}.{key}" if where else str(key),
                                       tensors)])
        return {"dict": items, "ordered": isinstance(value, OrderedDict)}
    if isinstance(value, (list, tuple)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [_encode(item, f"{where}.{i}" if where else str(i), tensors)
                       for i, item in enumerate(value)]}
    raise CheckpointError(f"cannot save {where or 'the value'}: a {type(value).__name__} "
                          "(checkpoints hold arrays, numbers, strings, None, lists, tuples "
                          "and dicts)")


def _umask_mode():
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _remove_stale_temporaries(directory, base):
    """Temporary files of saves to `base` whose process is gone (killed mid-save)."""
    for path in glob.glob(os.path.join(glob.escape(directory), f".{glob.escape(base)}.*.tmp")):
        match = re.search(r"\.kg(\d+)-[^.]*\.tmp$", path)
        if not match:
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            try:
                os.remove(path)
            except OSError:
                pass
        except (PermissionError, OSError):
            pass


def _write_atomic(path, data):
    target = os.path.realpath(path)  # a symlink stays a link; its target is replaced
    directory, base = os.path.split(target)
    if os.path.isdir(target):
        raise IsADirectoryError(21, "Is a directory", str(path))
    _remove_stale_temporaries(directory, base)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{base}.kg{os.getpid()}-", suffix=".tmp",
                                         dir=directory)
    except OSError as error:
        raise type(error)(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _umask_mode())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
        try:
            dir_fd = os.open(directory, os.O_RDONLY)
        except OSError:
            return  # a directory that cannot be opened (rare): the rename still stands
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException as error:
        try:
            os.remove(temporary)
        except OSError:
            pass
        if isinstance(error, OSError) and error.errno is not None:
            raise type(error)(error.errno, error.strerror, str(path)) from None
        raise


def save(obj, path):
    """Write a Module's (or Optimizer's) state_dict, or a tree of them, to `path` atomically.

    kg.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 5}, p)
    """
    from safetensors.numpy import save as serialize
    tree = obj.state_dict() if hasattr(obj, "state_dict") and callable(obj.state_dict) \
        else obj
    tensors = {}
    structure = _encode(tree, "", tensors)
    metadata = {"format": FORMAT, "structure": json.dumps(structure, allow_nan=False)}
    _write_atomic(path, serialize(tensors, metadata=metadata))


# ---- loading ------------------------------------------------------------------------------

def _decode(node, tensors, path):
    try:
        if "array" in node:
            array = tensors[node["array"]].reshape(node["shape"])  # safetensors has no 0-d
            if node.get("kind") == "scalar":
                return array[()]
            if node.get("kind") == "tensor":
                return Tensor(array, requires_grad=node.get("requires_grad", False))
            return array
        if "value" in node:
            return node["value"]
        if "float" in node:
            return float(node["float"])
        if "dict" in node:
            items = [(key, _decode(value, tensors, path)) for key, value in node["dict"]]
            return OrderedDict(items) if node.get("ordered") else dict(items)
        if "list" in node:
            return [_decode(item, tensors, path) for item in node["list"]]
        if "tuple" in node:
            return tuple(_decode(item, tensors, path) for item in node["tuple"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: a damaged checkpoint structure ({error})") from None
    raise CheckpointError(f"{path}: a damaged checkpoint structure (node {node!r})")


def _check_safetensors_header(path, size):
    """The header of a safetensors file, checked against the file's size."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is not a checkpoint ({size} bytes)")
        length = int.from_bytes(head, "little")
        if length > min(size - 8, MAX_HEADER):
            raise CheckpointError(f"{path} is not a checkpoint (its first 8 bytes do not give "
                                  "a header that fits the file)")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, ValueError):
            raise CheckpointError(f"{path} is not a checkpoint (no JSON header)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a checkpoint (no JSON header)")
    data_size = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = np.dtype(DTYPES[entry["dtype"]])
            shape = [int(n) for n in entry["shape"]]
            start, end = (int(n) for n in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: tensor {name!r} has a damaged header entry") \
                from None
        count = math.prod(shape) if all(n >= 0 for n in shape) else -1
        if count < 0 or not 0 <= start <= end <= data_size or \
                end - start != count * dtype.itemsize:
            raise CheckpointError(f"{path}: tensor {name!r} ({entry['dtype']} {shape}) does "
                                  f"not fit the file's {data_size} data bytes")
    return header


def _load_safetensors(path, size):
    from safetensors.numpy import load as deserialize
    header = _check_safetensors_header(path, size)
    metadata = header.get("__metadata__") or {}
    with open(path, "rb") as f:
        tensors = deserialize(f.read())
    tensors = {name: np.array(array) for name, array in tensors.items()}  # writeable copies
    if metadata.get("format") != FORMAT:  # a plain safetensors file from another tool
        return OrderedDict(sorted(tensors.items()))
    try:
        structure = json.loads(metadata["structure"])
    except (KeyError, ValueError):
        raise CheckpointError(f"{path}: a damaged checkpoint structure") from None
    return _decode(structure, tensors, path)


def _load_npz(path):
    """A checkpoint of earlier versions: an .npz of named arrays, read without pickle, each
    member's header checked against its stored size before its array is allocated."""
    import zipfile
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise CheckpointError(f"{path} is not a checkpoint (a damaged zip archive)") from None
    arrays = OrderedDict()
    with archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                raise CheckpointError(f"{path} is not a checkpoint (member {info.filename!r})")
            try:
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, fortran, dtype = read_header(member)
                    if dtype.hasobject:
                        raise ValueError("it holds Python objects")
                    if math.prod(shape) * dtype.itemsize > info.file_size:
                        raise ValueError(f"its header claims {shape} {dtype}, more than its "
                                         f"{info.file_size} bytes")
                with archive.open(info) as member:
                    arrays[info.filename[:-4]] = np.lib.format.read_array(
                        member, allow_pickle=False)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
                raise CheckpointError(f"{path}: member {info.filename!r} is not an array "
                                      f"({error})") from None
    return arrays


def load(path):
    """The tree saved at `path` (arrays come back as NumPy arrays, Tensors as Tensors)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as error:
        raise type(error)(error.errno, error.strerror, str(path)) from None
    if head == b"PK\x03\x04":
        return _load_npz(path)
    return _load_safetensors(path, size)
