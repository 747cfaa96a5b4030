"""Providers: where routes and services come from besides wharf.toml (see provider.py)."""
