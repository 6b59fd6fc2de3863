"""kernelgrad.data: DataLoader and the datasets (defined in nn/data.py)."""
from .nn.data import (DataLoader, load_digits, load_mnist, load_passfail, read_idx,
                      train_test_split)

__all__ = ["DataLoader", "load_digits", "load_passfail", "load_mnist", "read_idx",
           "train_test_split"]
