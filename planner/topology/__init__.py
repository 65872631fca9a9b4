"""Candidate fibre generation and synthetic topologies."""
