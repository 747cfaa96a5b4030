"""The port allocator's choice of where to start in its range (no socket is bound here)."""

from wharf.supervise.ports import PortAllocator


def test_allocators_start_at_different_places_in_the_range():
    """Two daemons starting together must not hand out the same ports in the same order."""
    starts = {PortAllocator(20000, 29999)._next for _ in range(5)}
    assert len(starts) > 1 and all(20000 <= s <= 29999 for s in starts)


def test_a_one_port_range_starts_at_that_port():
    assert PortAllocator(20005, 20005)._next == 20005
