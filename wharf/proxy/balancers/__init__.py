"""Balancers: one module per strategy, each choosing a backend for a request.

A balancer is plain code: it is given the backends at construction and asked to `pick`.
"""

from __future__ import annotations

from typing import Protocol

from wharf.registry.snapshot import Backend


class Balancer(Protocol):
    """Chooses the backend of the next request."""

    def pick(self) -> Backend | None: ...


def make_balancer(kind: str, backends: tuple[Backend, ...]) -> Balancer:
    """The balancer named `kind` over `backends`."""
    from wharf.proxy.balancers.round_robin import RoundRobin

    if kind != "round_robin":
        raise ValueError(f"unknown balancer {kind!r}")
    return RoundRobin(backends)
