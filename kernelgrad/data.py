"""Mini-batches and datasets.

DataLoader yields tuples of Tensors, reshuffled each epoch from its own seeded generator.
Datasets: the 8x8 digits (a copy ships with kernelgrad), the lecture's two-feature
pass/fail data (generated), and MNIST / Fashion-MNIST from local IDX files (never
downloaded).
"""
import gzip
import math
import numbers
import os

import numpy as np

from .nn.tensor import Tensor


class DataLoader:
    """Mini-batches over arrays that share their first dimension.

    With shuffle, each pass draws a new permutation from a generator seeded once by
    `seed`, so a run is reproducible and epochs differ. drop_last drops a final short batch.
    """

    def __init__(self, *arrays, batch_size=32, shuffle=False, drop_last=False, seed=None):
        if not arrays:
            raise ValueError("DataLoader needs at least one array")
        self.arrays = tuple(a.data if isinstance(a, Tensor) else np.asarray(a) for a in arrays)
        for i, a in enumerate(self.arrays):
            if a.ndim == 0:
                raise ValueError(f"DataLoader array {i} is 0-d ({a!r}): each array needs a "
                                 "first dimension of samples")
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            raise ValueError(f"DataLoader arrays differ in length: "
                             f"{[a.shape for a in self.arrays]}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.n = lengths.pop()
        if self.n == 0:
            raise ValueError("DataLoader got empty arrays")
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        if len(self) == 0:
            raise ValueError(f"drop_last with batch_size {batch_size} > {self.n} samples "
                             "leaves no batch")

    def __len__(self):
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self):
        order = self._rng.permutation(self.n) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            if order is None:
                index = slice(start, start + self.batch_size)
            else:
                index = order[start:start + self.batch_size]
            yield tuple(Tensor(a[index]) for a in self.arrays)

    def split(self, fraction):
        """(loader over the first 1 - fraction of the samples, arrays of the last fraction),
        as Keras's validation_split takes the last samples, before any shuffling."""
        if not 0 < fraction < 1:
            raise ValueError(f"validation_split must be in (0, 1), got {fraction}")
        n_val = int(round(self.n * fraction))
        if not 0 < n_val < self.n:
            raise ValueError(f"validation_split {fraction} of {self.n} samples leaves an empty "
                             "set")
        cut = self.n - n_val
        loader = DataLoader(*(a[:cut] for a in self.arrays), batch_size=self.batch_size,
                            shuffle=self.shuffle, drop_last=self.drop_last, seed=self.seed)
        return loader, tuple(a[cut:] for a in self.arrays)


def train_test_split(x, y, test_size=0.2, seed=0, stratify=True):
    """(x_train, x_test, y_train, y_test), stratified by the labels y by default."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    test = []
    for members in groups:
        members = rng.permutation(members)
        test.append(members[:int(round(len(members) * test_size))])
    test = np.sort(np.concatenate(test))
    train = rng.permutation(np.setdiff1d(np.arange(len(y)), test))
    test = rng.permutation(test)
    return x[train], x[test], y[train], y[test]


def load_digits(dtype=np.float32):
    """The 1797 8x8 digit images that scikit-learn bundles, shipped with kernelgrad
    (kernelgrad/datasets/README.md): (x (1797, 64) in [0, 1], labels (1797,) int64)."""
    with np.load(DIGITS, allow_pickle=False) as data:
        images, labels = data["images"], data["labels"]
    return (images / 16.0).astype(dtype), labels.astype(np.int64)


def load_passfail(n=200, seed=0, dtype=np.float32):
    """The lecture's pass/fail data: (hours studied, hours slept) in [0, 10] and a label
    1 (pass) when 0.8 studied + 0.4 slept + noise exceeds 6. Generated from `seed`."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 10.0, (n, 2))
    score = 0.8 * x[:, 0] + 0.4 * x[:, 1] + rng.normal(0.0, 0.5, n)
    return x.astype(dtype), (score > 6.0).astype(np.int64)


DIGITS = os.path.join(os.path.dirname(__file__), "datasets", "digits.npz")
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """An IDX file (the MNIST format, gzipped or not) as a NumPy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: the header of a {ndim}-D IDX file needs {header} bytes, "
                         f"the file has {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if len(raw) != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes) but the "
                         f"file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(directory, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no {stem} or {stem}.gz in {directory!r}: kernelgrad never "
                            "downloads data; put the MNIST/Fashion-MNIST IDX files there")


def load_mnist(directory, split="train", dtype=np.float32):
    """MNIST or Fashion-MNIST from IDX files in `directory` (same file names for both):
    (x (n, 784) in [0, 1], labels (n,) int64) for split "train" or "test"."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"MNIST files in {directory!r} do not match: images {images.shape}, "
                         f"labels {labels.shape}")
    x = (images.reshape(len(images), -1) / 255.0).astype(dtype)
    return x, labels.astype(np.int64)
