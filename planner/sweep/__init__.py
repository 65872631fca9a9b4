"""Parameter sweeps over scenarios and networks."""
