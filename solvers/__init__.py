"""Optimisation models of qkdplan: Pyomo (and direct HiGHS) models over plain tables.

This package never imports :mod:`planner`; it receives coefficient tables
(pandas / numpy) and returns :class:`solvers.base.SolveResult` objects.
"""
