"""Independent oracles the tests (and benchmarks) check the solvers against: brute-force
enumeration of small instances and a placement validator that shares no code with the model.
They are not part of the installed package."""
