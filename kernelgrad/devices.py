"""Where arrays live: "cpu" (NumPy) or "cuda" (CuPy).

The kernel API (kernelgrad.kernels) takes CuPy arrays and runs the CUDA kernels on them.
The nn API (Tensor, modules, fit, `kernelgrad train`) does not run on the GPU yet, so
moving a Tensor or model to "cuda" raises a clear error naming what is missing; "auto"
picks the CPU until it does.
"""
import numpy as np

DEVICES = ("cpu", "cuda", "auto")


def device_of(array):
    """"cuda" for a CuPy array, "cpu" for anything else (NumPy arrays, scalars, lists)."""
    return "cuda" if type(array).__module__.split(".")[0] == "cupy" else "cpu"


def cuda_available():
    """True when CuPy imports and sees a GPU; never raises (no driver, no CuPy: False)."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def resolve(device):
    """The concrete device for a user's choice of "cpu", "cuda" or "auto"."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "auto":
        return "cpu"  # becomes "cuda" when cuda_available() once the CUDA kernels exist
    if device == "cuda":
        reason = ("a GPU was found, but kernelgrad's nn API does not run on it yet (the "
                  "kernel functions in kernelgrad.kernels take CuPy arrays)"
                  if cuda_available() else "no CUDA GPU is available (or CuPy is not installed)")
        raise RuntimeError(f"device 'cuda' is not usable: {reason}; use device='cpu'")
    return device


def move(array, device):
    """`array` on `device`; the same object when it is already there."""
    target = resolve(device)
    if device_of(array) == target:
        return array
    return np.asarray(array.get())  # a CuPy array to the CPU


def same_device(*arrays):
    """Raise when the arrays of one op live on different devices, naming both."""
    devices = {device_of(a) for a in arrays}
    if len(devices) > 1:
        names = " and ".join(sorted(devices))
        raise RuntimeError(f"an op got tensors on different devices ({names}): move them to "
                           "one device with .to(...)")
