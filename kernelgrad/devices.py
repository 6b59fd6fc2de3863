"""Where arrays live: "cpu" (NumPy) or "cuda" (CuPy).

The kernel API (kernelgrad.kernels) runs its CUDA kernels on CuPy arrays, and the nn API
follows its tensors: `model.to("cuda")` moves the parameters, fit/evaluate/predict move
each batch to the model's device, and the optimizers' state lives beside each parameter.
"auto" is "cuda" where a GPU and CuPy are found, else "cpu". (Written and compile-checked
without a GPU; tests/nn/test_nn_cuda.py checks it on one.)
"""
import functools

import numpy as np

DEVICES = ("cpu", "cuda", "auto")


def is_cuda_array(array):
    """True for a CuPy array (told by its type's module: no CuPy import needed)."""
    if type(array) is np.ndarray:  # the common case, first
        return False
    return type(array).__module__.split(".")[0] == "cupy"


def device_of(array):
    """"cuda" for a CuPy array, "cpu" for anything else (NumPy arrays, scalars, lists)."""
    return "cuda" if is_cuda_array(array) else "cpu"


def xp_of(array):
    """The array module of `array`: cupy for a CuPy array, numpy for anything else."""
    if is_cuda_array(array):
        import cupy
        return cupy
    return np


def to_numpy(array):
    """A NumPy array of `array`'s values (copied from the GPU for a CuPy array)."""
    return array.get() if is_cuda_array(array) else np.asarray(array)


@functools.lru_cache(maxsize=None)  # asked on every .to("cuda"); GPUs do not come and go
def cuda_available():
    """True when CuPy imports and sees a GPU; never raises (no driver, no CuPy: False)."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def device(name):
    """A device by name, as torch.device(...) in a script: "cpu" or "cuda" ("cuda:0" is the
    current GPU); Module.to and Tensor.to take the same names."""
    name = str(name)
    base = name.split(":")[0]
    if base not in ("cpu", "cuda"):
        raise ValueError(f"device is 'cpu' or 'cuda', got {name!r}")
    return base


def resolve(device):
    """The concrete device for a user's choice of "cpu", "cuda" or "auto"."""
    if isinstance(device, str) and device.startswith("cuda:"):
        device = "cuda"
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        raise RuntimeError("device 'cuda' is not usable: no CUDA GPU is available (or CuPy is "
                           "not installed: pip install -e '.[cuda12]'); use device='cpu'")
    return device


def move(array, device):
    """`array` on `device`; the same object when it is already there."""
    target = resolve(device)
    if device_of(array) == target:
        return array
    if target == "cpu":
        return np.asarray(array.get())
    import cupy
    return cupy.asarray(array)


def same_device(*arrays):
    """Raise when the arrays of one op live on different devices, naming both."""
    devices = {device_of(a) for a in arrays}
    if len(devices) > 1:
        names = " and ".join(sorted(devices))
        raise RuntimeError(f"an op got tensors on different devices ({names}): move them to "
                           "one device with .to(...)")
