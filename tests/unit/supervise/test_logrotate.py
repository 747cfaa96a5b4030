"""Log rotation by time, total size of the backups, and compression."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

from wharf.supervise.logrotate import Compressor, Rotation, backups_of, period
from wharf.supervise.logs import Sink

HOUR = 3600.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> float:
    return time.mktime((y, mo, d, h, mi, 0, 0, 0, -1))


def names(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_period_is_the_local_hour_or_day():
    assert period(local(2026, 3, 1, 10, 5), "hourly") == period(local(2026, 3, 1, 10, 59),
                                                                "hourly")
    assert period(local(2026, 3, 1, 10), "hourly") != period(local(2026, 3, 1, 11), "hourly")
    assert period(local(2026, 3, 1, 0), "daily") == period(local(2026, 3, 1, 23, 59), "daily")
    assert period(local(2026, 3, 1, 23), "daily") != period(local(2026, 3, 2, 0), "daily")
    assert period(0.0, None) == ()


def test_daily_rotation_happens_at_the_first_write_of_a_new_day(tmp_path):
    path = tmp_path / "a.log"
    clock = Clock(local(2026, 3, 1, 23, 58))
    sink = Sink(path, rotation=Rotation(backups=3, every="daily"), now=clock)
    sink.write(b"monday\n")
    clock.now += 60
    sink.write(b"still monday\n")
    clock.now += 2 * 60
    sink.write(b"tuesday\n")
    sink.close()
    assert path.read_bytes() == b"tuesday\n"
    assert (tmp_path / "a.log.1").read_bytes() == b"monday\nstill monday\n"


def test_hourly_rotation_keeps_log_backups_files(tmp_path):
    path = tmp_path / "a.log"
    clock = Clock(local(2026, 3, 1, 0, 30))
    sink = Sink(path, rotation=Rotation(backups=2, every="hourly"), now=clock)
    for hour in range(5):
        sink.write(f"hour {hour}\n".encode())
        clock.now += HOUR
    sink.close()
    assert names(path) == ["a.log", "a.log.1", "a.log.2"]
    assert (tmp_path / "a.log.2").read_bytes() == b"hour 2\n"


def test_an_empty_period_rotates_nothing(tmp_path):
    path = tmp_path / "a.log"
    clock = Clock(local(2026, 3, 1, 0, 30))
    sink = Sink(path, rotation=Rotation(backups=2, every="hourly"), now=clock)
    sink.write(b"x\n")
    clock.now += 5 * HOUR
    sink.write(b"y\n")
    sink.close()
    assert names(path) == ["a.log", "a.log.1"]


def test_a_file_left_from_an_earlier_day_rotates_at_the_first_write(tmp_path):
    import os

    path = tmp_path / "a.log"
    path.write_bytes(b"old\n")
    yesterday = local(2026, 3, 1, 12)
    os.utime(path, (yesterday, yesterday))
    sink = Sink(path, rotation=Rotation(backups=2, every="daily"), now=Clock(yesterday + 86400))
    sink.write(b"new\n")
    sink.close()
    assert (tmp_path / "a.log.1").read_bytes() == b"old\n"
    assert path.read_bytes() == b"new\n"


def test_the_backups_never_take_more_than_max_total_oldest_deleted_first(tmp_path):
    path = tmp_path / "a.log"
    sink = Sink(path, rotation=Rotation(max_size=100, backups=50, max_total=350))
    for i in range(20):
        sink.write(f"{i:02d}".encode() + b"x" * 97 + b"\n")  # one file each
    sink.close()
    kept = backups_of(path, 50)
    assert sum(p.stat().st_size for p in kept) <= 350
    assert [p.name for p in kept] == ["a.log.1", "a.log.2", "a.log.3"]
    assert (tmp_path / "a.log.3").read_bytes().startswith(b"16")  # the newest three


def test_compressed_backups_are_gzip_and_numbered_in_age_order(tmp_path):
    path = tmp_path / "a.log"
    sink = Sink(path, rotation=Rotation(max_size=1000, backups=3, compress=True))
    for i in range(5):
        sink.write((f"file {i} " * 100)[:999].encode() + b"\n")
    sink.close()
    assert names(path) == ["a.log", "a.log.1.gz", "a.log.2.gz", "a.log.3.gz"]
    assert gzip.decompress((tmp_path / "a.log.1.gz").read_bytes()).startswith(b"file 3")
    assert gzip.decompress((tmp_path / "a.log.3.gz").read_bytes()).startswith(b"file 1")
    assert (tmp_path / "a.log.1.gz").stat().st_size < 200


def test_compression_in_its_thread_keeps_the_order_and_max_total(tmp_path):
    path = tmp_path / "a.log"
    compressor = Compressor()
    sink = Sink(path, rotation=Rotation(max_size=10_000, backups=10, compress=True,
                                        max_total=150), compressor=compressor)
    for i in range(30):
        sink.write(f"{i:03d}".encode() + bytes(9_990) + b"\n")
    sink.close()
    compressor.close()
    kept = backups_of(path, 10)
    assert all(p.name.endswith(".gz") for p in kept)
    assert sum(p.stat().st_size for p in kept) <= 150
    assert gzip.decompress(kept[0].read_bytes()).startswith(b"028")
    assert not [n for n in names(path) if n.endswith((".rotated", ".partial"))]


def test_compressed_and_plain_backups_shift_together(tmp_path):
    path = tmp_path / "a.log"
    plain = Sink(path, rotation=Rotation(max_size=10, backups=4))
    plain.write(b"one......\ntwo......\n")
    plain.close()
    packed = Sink(path, rotation=Rotation(max_size=10, backups=4, compress=True))
    packed.write(b"three....\nfour.....\n")
    packed.close()
    assert names(path) == ["a.log", "a.log.1.gz", "a.log.2.gz", "a.log.3"]
    assert (tmp_path / "a.log.3").read_bytes() == b"one......\n"
