"""Each config converter: what it accepts, and the message for what it refuses."""

import signal

import pytest

from wharf.config import converters as c


@pytest.mark.parametrize(("raw", "seconds"), [
    (5, 5.0), (1.5, 1.5), ("10s", 10.0), ("250ms", 0.25), ("5m", 300.0), ("1h", 3600.0),
    ("2", 2.0), (" 3 s ", 3.0),
])
def test_duration_accepts(raw, seconds):
    assert c.duration(raw) == seconds


@pytest.mark.parametrize("raw", ["ten", "5 days", -1, True, [1], "1.2.3s"])
def test_duration_refuses(raw):
    with pytest.raises(ValueError, match=r"duration|negative"):
        c.duration(raw)


@pytest.mark.parametrize(("raw", "size"), [
    (1024, 1024), ("512MB", 512_000_000), ("512M", 512_000_000), ("64KiB", 65536),
    ("1GiB", 1024**3), ("1.5G", 1_500_000_000), ("100", 100), ("10kb", 10_000),
])
def test_byte_size_accepts(raw, size):
    assert c.byte_size(raw) == size


@pytest.mark.parametrize("raw", ["lots", "12 parsecs", 0, "-5MB", False])
def test_byte_size_refuses(raw):
    with pytest.raises(ValueError):
        c.byte_size(raw)


@pytest.mark.parametrize(("raw", "number"), [
    ("TERM", signal.SIGTERM), ("SIGINT", signal.SIGINT), ("hup", signal.SIGHUP),
    (9, signal.SIGKILL), ("QUIT", signal.SIGQUIT),
])
def test_signal_number_accepts(raw, number):
    assert c.signal_number(raw) == number


@pytest.mark.parametrize("raw", ["FOO", 999, True, 1.5])
def test_signal_number_refuses(raw):
    with pytest.raises(ValueError, match="signal"):
        c.signal_number(raw)


def test_command_is_split_like_a_shell():
    assert c.command_args("python3 -m http.server '{port}'") == (
        "python3", "-m", "http.server", "{port}")


def test_command_list_is_kept():
    assert c.command_args(["a b", "c"]) == ("a b", "c")


@pytest.mark.parametrize(("raw", "message"), [
    ("", "empty"), ([], "empty"), ("echo 'unclosed", "split"), (5, "string or a list"),
    ([1, 2], "string or a list"),
])
def test_command_refuses(raw, message):
    with pytest.raises(ValueError, match=message):
        c.command_args(raw)


def test_port_range():
    assert c.port_range("20000-20010") == (20000, 20010)
    for bad in ("10-5", "0-10", "1-70000", "abc"):
        with pytest.raises(ValueError, match="port range"):
            c.port_range(bad)


def test_integer_bounds():
    at_least_one = c.integer(1, 10)
    assert at_least_one(3) == 3
    with pytest.raises(ValueError, match=">= 1, got 0"):
        at_least_one(0)
    with pytest.raises(ValueError, match="<= 10"):
        at_least_one(11)
    with pytest.raises(ValueError, match="integer"):
        at_least_one(True)


def test_one_of_lists_choices():
    with pytest.raises(ValueError, match='"always", "never"'):
        c.one_of("always", "never")("sometimes")
