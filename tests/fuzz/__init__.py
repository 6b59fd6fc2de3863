"""The fuzz suite: hypothesis-generated calls of every public kernel function and of the
nn entry points, each input and output against guard pages, run in subprocesses
(test_fuzz.py; run.py is the runner, calls.py the generators, guard.py the allocator)."""
