"""Peak-EWMA (Linkerd's and Envoy's choice for backends of unequal speed): power of two
choices on cost = latency estimate x (in-flight + 1) / weight.

The estimate follows a slower response at once (the peak) and decays towards faster ones with
a time constant of DECAY seconds, so a backend that turns slow loses traffic immediately and
wins it back gradually.
"""

from __future__ import annotations

import math

from wharf.proxy.balancers import Load
from wharf.proxy.balancers.p2c import PowerOfTwo

DECAY = 10.0  # seconds, as Linkerd's default


def observe(load: Load, latency: float, now: float) -> None:
    """Fold one response time into a backend's estimate."""
    if latency > load.ewma:
        load.ewma = latency
    else:
        weight = math.exp(-(now - load.ewma_at) / DECAY) if load.ewma_at else 0.0
        load.ewma = load.ewma * weight + latency * (1.0 - weight)
    load.ewma_at = now


class PeakEwma(PowerOfTwo):
    """Power of two choices weighed by expected latency."""

    def __repr__(self) -> str:
        return f"<PeakEwma ewma={[round(load.ewma, 4) for load in self._loads]}>"

    def cost(self, i: int) -> float:
        """Expected latency, scaled by the queue in front of it."""
        load = self._loads[i]
        return load.ewma * (load.inflight + 1) / self._backends[i].weight
