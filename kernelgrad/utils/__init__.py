"""torch.utils's place: `kg.utils.data` holds kernelgrad.data's loaders, so that a script's
`torch.utils.data.DataLoader` (or `from torch.utils.data import ...`) runs after
`import kernelgrad as torch`."""
from . import data

__all__ = ["data"]
