"""Session-ticket keys: one set for every worker, rotated, the newest first."""

from itertools import count

from wharf.certs.tickets import KEY_BYTES, TicketKeys


def keys_made_by_counter() -> TicketKeys:
    n = count()
    return TicketKeys(rotate_every=100.0, keep=3, random=lambda size: bytes([next(n)]) * size)


def test_a_key_is_made_at_first_use_in_openssls_80_byte_layout():
    keys = TicketKeys()
    [key] = keys.keys(0.0)
    assert len(bytes.fromhex(key)) == KEY_BYTES
    assert keys.keys(5.0) == (key,)


def test_the_keys_rotate_newest_first_and_the_oldest_go():
    keys = keys_made_by_counter()
    first = keys.keys(0.0)
    assert keys.keys(99.0) == first
    assert keys.next_rotation() == 100.0
    second = keys.keys(100.0)
    assert second[1:] == first and len(second) == 2
    keys.keys(200.0)
    fourth = keys.keys(300.0)
    assert len(fourth) == 3 and first[0] not in fourth
    assert fourth[0].startswith("03")


def test_no_rotation_is_due_before_the_first_key():
    assert TicketKeys().next_rotation() == float("inf")
