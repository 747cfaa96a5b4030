"""The daemon: the composition root that wires config, supervisor, control and signals."""
