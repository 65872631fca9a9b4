"""Simulators that verify designs independently of the optimisation models."""
