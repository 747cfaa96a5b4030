"""The response buffer: memory, then a temp file, in order; full when both are used up."""

from wharf.proxy.buffering import MEMORY_LIMIT, ResponseBuffer


def drain(buffer: ResponseBuffer) -> bytes:
    out = b""
    while data := buffer.take():
        out += data
    return out


def pieces(count: int, size: int = 10_000) -> list[bytes]:
    return [bytes([i % 251]) * size for i in range(count)]


def test_bytes_come_out_in_the_order_they_went_in_across_memory_and_file():
    buffer = ResponseBuffer(max_file=10 * MEMORY_LIMIT)
    data = pieces(40)
    for piece in data:
        buffer.add(piece)
    assert len(buffer) == sum(map(len, data))
    assert drain(buffer) == b"".join(data)
    assert len(buffer) == 0
    buffer.close()


def test_new_bytes_wait_behind_the_file_until_it_is_drained():
    buffer = ResponseBuffer(max_file=10 * MEMORY_LIMIT)
    data = pieces(20)
    for piece in data[:10]:
        buffer.add(piece)
    out = buffer.take() + buffer.take()
    for piece in data[10:]:
        buffer.add(piece)
    assert out + drain(buffer) == b"".join(data)
    buffer.add(b"again")  # a drained buffer starts over in memory
    assert drain(buffer) == b"again"
    buffer.close()


def test_memory_only_is_full_at_its_limit():
    buffer = ResponseBuffer(max_file=0)
    buffer.add(b"x" * (MEMORY_LIMIT - 1))
    assert not buffer.full()
    buffer.add(b"x")
    assert buffer.full()
    buffer.take()
    assert not buffer.full()
    buffer.close()


def test_the_file_allowance_bounds_the_whole_buffer():
    buffer = ResponseBuffer(max_file=3 * MEMORY_LIMIT)
    added = 0
    while not buffer.full():
        buffer.add(b"y" * 10_000)
        added += 10_000
    assert 3 * MEMORY_LIMIT < added <= 4 * MEMORY_LIMIT + 10_000
    assert drain(buffer) == b"y" * added
    buffer.close()
