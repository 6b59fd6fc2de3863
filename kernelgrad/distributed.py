"""Data-parallel training over several processes.

Until init() is called (or when the job has one process) everything here is the identity:
rank 0 of a world of one, sums of one process's values, loaders unsharded; fit and the
callbacks ask this module, so single-process training takes no other path.
"""
_world = None  # the communicator once init() has run


def rank():
    """This process's rank, from 0 (0 before init())."""
    return 0 if _world is None else _world.rank


def world_size():
    """The number of processes training together (1 before init())."""
    return 1 if _world is None else _world.size


def sum_floats(values):
    """Each value summed over the processes (the values themselves in a world of one)."""
    if _world is None:
        return [float(v) for v in values]
    return _world.sum_floats(values)


def shard_loader(loader):
    """`loader`, or this process's shard of it when several processes train together."""
    if _world is None:
        return loader
    return loader.shard(rank(), world_size())
