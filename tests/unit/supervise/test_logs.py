"""Line splitting, rotation, tails, and a writer that never blocks its caller on a stalled file."""

import os
import re
import threading
import time

from wharf.supervise import logs
from wharf.supervise.logs import Clock, LineSplitter, LogWriter, Sink, read_tail

STAMP = rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "


def test_splitter_prefixes_complete_lines_and_keeps_the_rest():
    s = LineSplitter("web.0", Clock())
    out = s.feed(b"one\ntwo\nthr")
    assert re.fullmatch(STAMP + rb"web\.0 \| one\n" + STAMP + rb"web\.0 \| two\n", out)
    assert s.feed(b"ee") == b""
    assert s.feed(b"\n").endswith(b"web.0 | three\n")


def test_splitter_flushes_a_final_partial_line():
    s = LineSplitter("w.1", Clock())
    s.feed(b"no newline")
    assert s.flush().endswith(b"w.1 | no newline\n")
    assert s.flush() == b""


def test_splitter_cuts_endless_lines():
    s = LineSplitter("w.0", Clock())
    out = s.feed(b"x" * (logs.MAX_LINE + 10))
    assert out.count(b"\n") == 1 and out.endswith(b"x\n")


def test_clock_formats_milliseconds():
    stamp = Clock().stamp(1_700_000_000.25)
    assert re.fullmatch(STAMP.decode(), stamp.decode())
    assert stamp.decode().endswith(".250 ")


def test_sink_rotates_by_size_and_keeps_backups(tmp_path):
    path = tmp_path / "app.log"
    sink = Sink(path, max_size=100, backups=2)
    for i in range(5):
        sink.write(f"{i}".encode() * 60 + b"\n")
    sink.close()
    assert path.read_bytes().startswith(b"4")
    assert (tmp_path / "app.log.1").read_bytes().startswith(b"3")
    assert (tmp_path / "app.log.2").read_bytes().startswith(b"2")
    assert not (tmp_path / "app.log.3").exists()


def test_sink_without_backups_truncates(tmp_path):
    path = tmp_path / "app.log"
    sink = Sink(path, max_size=10, backups=0)
    sink.write(b"aaaaaaaa\n")
    sink.write(b"bbbbbbbb\n")
    sink.close()
    assert path.read_bytes() == b"bbbbbbbb\n"
    assert list(tmp_path.iterdir()) == [path]


def test_read_tail(tmp_path):
    path = tmp_path / "x.log"
    path.write_bytes(b"".join(f"line {i}\n".encode() for i in range(10000)))
    assert read_tail(path, 3) == [b"line 9997\n", b"line 9998\n", b"line 9999\n"]
    assert read_tail(path, 0) == []
    assert read_tail(tmp_path / "none.log", 5) == []


def test_writer_writes_in_order(tmp_path):
    writer = LogWriter()
    sink = Sink(tmp_path / "o.log", max_size=10**9, backups=1)
    for i in range(1000):
        writer.write(sink, f"{i}\n".encode())
    writer.close()
    assert (tmp_path / "o.log").read_text().split() == [str(i) for i in range(1000)]


def test_a_stalled_log_file_never_blocks_the_caller_and_losses_are_marked(tmp_path):
    """A FIFO nobody reads stalls the writer thread exactly like a hung disk would."""
    fifo = tmp_path / "stalled.log"
    os.mkfifo(fifo)
    writer = LogWriter()
    sink = Sink(fifo)
    chunk = b"y" * 65535 + b"\n"
    started = time.monotonic()
    for _ in range(logs.MAX_PENDING // len(chunk) + 20):
        writer.write(sink, chunk)
    assert time.monotonic() - started < 5  # generous: it must not wait for the reader at all
    assert sink.dropped > 0
    received = bytearray()

    def drain() -> None:
        with open(fifo, "rb") as f:
            while data := f.read(1 << 20):
                received.extend(data)

    reader = threading.Thread(target=drain)
    reader.start()
    deadline = time.monotonic() + 30
    while sink.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.write(sink, b"after the stall\n")
    writer.close()
    reader.join(timeout=30)
    assert b"bytes of output dropped: the log disk was too slow" in received
    assert received.endswith(b"after the stall\n")


def test_a_retired_sink_is_written_then_closed(tmp_path):
    """A sink replaced by a reload (new log path) or of a removed app must not keep its
    file open for the daemon's lifetime."""
    writer = LogWriter()
    sink = Sink(tmp_path / "a.log")
    try:
        writer.write(sink, b"last line\n")
        writer.retire(sink)
        deadline = time.monotonic() + 10
        while not ((tmp_path / "a.log").exists() and sink._fd is None
                   and (tmp_path / "a.log").read_bytes() == b"last line\n"):
            assert time.monotonic() < deadline, "the sink was not closed after its last write"
            time.sleep(0.01)
    finally:
        writer.close()


def test_has_output_looks_at_the_files_and_their_first_rotated_copy(tmp_path):
    from wharf.supervise.logs import has_output

    out, err = tmp_path / "a.out.log", tmp_path / "a.err.log"
    assert not has_output([out, err])
    out.write_bytes(b"")
    assert not has_output([out, err])
    (tmp_path / "a.err.log.1").write_bytes(b"x\n")
    assert has_output([out, err])
