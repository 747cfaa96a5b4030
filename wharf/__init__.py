"""Wharf: supervise app processes and proxy traffic to them, from one wharf.toml."""

__version__ = "0.1.0"
__all__ = ["__version__"]
