"""Size-swept benchmarks of qkdplan's models and simulators (source checkout only).

``python -m benchmarks [--quick] [--out DIR]`` (or ``qkdplan bench``) measures
end-to-end planning at growing sizes, collects the tables that the per-model
scripts (``bench_*.py``, ``repalloc.py``) have committed, fits how each cost
grows (time ~ n^a) and writes ``results.md``.
"""
