"""Execution: the task executor, the Dask scheduler connection and progress reporting."""
