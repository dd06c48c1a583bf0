"""charrnn's benchmark suite: `python -m benchmarks [NAME ...]` (or `make bench`).

Each benchmark prints JSON lines: its figures and the ratio against a reference measured in
the same process on the same data. Benchmarks are never timed tests.
"""
