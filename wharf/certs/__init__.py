"""Certificates in the control plane: files read at config load, what the workers are sent."""
