"""The idle-connection pool: LIFO reuse, caps, closed connections, idle expiry."""

from wharf.proxy.pool import Pool


class Conn:
    def __init__(self, closed: bool = False) -> None:
        self.closed = closed
        self.idle_since = 0.0

    def is_closed(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def test_reuses_the_most_recent_connection_first():
    pool, a, b = Pool(10, 60), Conn(), Conn()
    pool.put(a, 1.0)
    pool.put(b, 2.0)
    assert pool.take() is b and pool.take() is a and pool.take() is None
    assert pool.reused == 2


def test_never_hands_out_a_closed_connection():
    pool, a, b = Pool(10, 60), Conn(), Conn()
    pool.put(a, 1.0)
    pool.put(b, 1.0)
    b.close()
    assert pool.take() is a


def test_closed_connections_are_not_kept_and_can_be_discarded():
    pool, a = Pool(10, 60), Conn()
    pool.put(Conn(closed=True), 1.0)
    assert len(pool) == 0
    pool.put(a, 1.0)
    pool.discard(a)
    assert len(pool) == 0


def test_a_full_pool_closes_the_extra_connection():
    pool, conns = Pool(2, 60), [Conn() for _ in range(3)]
    for c in conns:
        pool.put(c, 1.0)
    assert len(pool) == 2 and conns[2].closed


def test_a_closed_pool_closes_connections_that_come_back():
    pool, idle, busy = Pool(10, 60), Conn(), Conn()
    pool.put(idle, 1.0)
    pool.close()  # its backend left the snapshot while `busy` was serving a request
    pool.put(busy, 2.0)
    assert idle.closed and busy.closed and len(pool) == 0


def test_sweep_closes_connections_idle_too_long():
    pool, old, new = Pool(10, 5.0), Conn(), Conn()
    pool.put(old, 0.0)
    pool.put(new, 10.0)
    pool.sweep(12.0)
    assert old.closed and not new.closed and pool.take() is new
