"""Mini-batches and datasets.

DataLoader yields tuples of Tensors, reshuffled each epoch from (seed, epoch).
Datasets: the 8x8 digits (a copy ships with kernelgrad), the lecture's two-feature
pass/fail data (generated), and MNIST / Fashion-MNIST from local IDX files (never
downloaded).
"""
import copy
import gzip
import math
import numbers
import os

import numpy as np

from .devices import device_of
from .kernels import checks
from .nn.random import next_seed
from .nn.tensor import Tensor

__all__ = ["TensorDataset", "DataLoader", "train_test_split", "load_digits", "load_passfail",
           "load_mnist", "read_idx"]


class TensorDataset:
    """Arrays (or Tensors) that share their first dimension: dataset[i] is the tuple of
    their i-th samples, as torch.utils.data.TensorDataset."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(_samples(a, i) for i, a in enumerate(tensors))
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            raise ValueError(f"TensorDataset arrays differ in length: "
                             f"{[a.shape for a in self.arrays]}")

    @property
    def tensors(self):
        return tuple(Tensor(a) for a in self.arrays)

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(Tensor(a[index]) for a in self.arrays)


def _samples(a, i):
    a = a.data if isinstance(a, Tensor) else a
    a = a if device_of(a) == "cuda" else np.asarray(a)
    if a.ndim == 0:
        raise ValueError(f"DataLoader array {i} is 0-d ({a!r}): each array needs a first "
                         "dimension of samples")
    return a


class DataLoader:
    """Mini-batches over arrays that share their first dimension, or over a TensorDataset.

    With shuffle, epoch e's order is a permutation drawn from (seed, e) alone: every pass
    reshuffles, a run is reproducible, and a training resumed at epoch e (set_epoch, or
    the state_dict) sees the order the uninterrupted run saw. `seed` defaults to a draw
    from the library's seed (kernelgrad.manual_seed). drop_last drops a final short batch.

    Across processes (shard(rank, world_size), as distributed training does), every rank
    draws the same order, and each global batch of world_size x batch_size samples is cut
    into one batch per rank, so one step over all ranks sees what one process sees with
    a batch world_size times larger. A last, short global batch is shared out evenly; when
    it does not divide, samples from the start of the epoch's order fill it (PyTorch's
    DistributedSampler does the same), so every rank runs the same number of steps;
    with drop_last it is dropped.
    """

    def __init__(self, *arrays, batch_size=32, shuffle=False, drop_last=False, seed=None,
                 num_workers=0, pin_memory=False):
        # torch's worker processes and pinned buffers have no work here: a batch is a
        # slice of arrays already in memory (the arguments are accepted and checked)
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) \
                or num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
        if len(arrays) == 1 and isinstance(arrays[0], TensorDataset):
            arrays = arrays[0].arrays
        if not arrays:
            raise ValueError("DataLoader needs at least one array")
        self.dataset = TensorDataset(*arrays)
        self.arrays = self.dataset.arrays
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.n = len(self.dataset)
        if self.n == 0:
            raise ValueError("DataLoader got empty arrays")
        if seed is not None:
            checks.uint64(seed, "seed")
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.rank, self.world_size = 0, 1
        if len(self) == 0:
            raise ValueError(f"drop_last with batch_size {batch_size} > {self.n} samples "
                             "leaves no batch")
        self.seed = next_seed() if seed is None else int(seed)
        self.epoch = 0

    def __len__(self):
        full, rest = divmod(self.n, self.batch_size * self.world_size)
        return full + (1 if rest and not self.drop_last else 0)

    def set_epoch(self, epoch):
        """The epoch the next pass draws its order for (counted from 0)."""
        self.epoch = checks.uint64(epoch, "epoch")

    def order(self, epoch):
        """The sample order of `epoch` (the same on every rank)."""
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def _indices(self, epoch):
        """This rank's batches' sample indices for `epoch`."""
        order = self.order(epoch)
        step, world = self.batch_size * self.world_size, self.world_size
        for start in range(0, len(self) * step, step):
            chunk = order[start:start + step]
            if len(chunk) < step:  # the last global batch: shared out evenly
                per_rank = -(-len(chunk) // world)
                chunk = np.concatenate([chunk, order[:per_rank * world - len(chunk)]])
            else:
                per_rank = self.batch_size
            yield chunk[self.rank * per_rank:(self.rank + 1) * per_rank]

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        for index in self._indices(epoch):
            if not self.shuffle and self.world_size == 1:
                index = slice(int(index[0]), int(index[-1]) + 1)  # a view: no copy
            yield tuple(Tensor(a[index]) for a in self.arrays)

    def shard(self, rank, world_size):
        """This loader's share for process `rank` of `world_size` (see the class docstring)."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size}")
        if self.drop_last and self.n < self.batch_size * world_size:
            raise ValueError(f"{self.n} samples leave no batch of {self.batch_size} for each "
                             f"of {world_size} processes (drop_last)")
        shard = copy.copy(self)
        shard.rank, shard.world_size = rank, world_size
        return shard

    def state_dict(self):
        """What a resumed run needs to draw the same orders: the seed and the next epoch."""
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state):
        self.seed = checks.uint64(state["seed"], "seed")
        self.set_epoch(state["epoch"])

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
