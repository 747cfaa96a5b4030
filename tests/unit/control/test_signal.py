"""The SIG argument of `wharf signal`: a name, with or without SIG, in any case, or a number."""

import signal

import pytest

from wharf.control.commands.signal import signal_of
from wharf.errors import UsageError


@pytest.mark.parametrize("value, expected", [
    ("HUP", signal.SIGHUP), ("SIGHUP", signal.SIGHUP), ("usr1", signal.SIGUSR1),
    (" term ", signal.SIGTERM), ("1", signal.SIGHUP), (10, signal.SIGUSR1),
])
def test_a_signal_is_named_or_numbered(value, expected):
    assert signal_of({"signal": value}) == expected


@pytest.mark.parametrize("value", ["NOPE", "SIG", "0", "999", "", None, 1.5])
def test_an_unknown_signal_is_a_usage_error(value):
    with pytest.raises(UsageError) as error:
        signal_of({"signal": value})
    assert error.value.exit_code == 2 and "unknown signal" in error.value.message
    assert "HUP" in error.value.hint
