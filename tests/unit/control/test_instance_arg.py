"""`--instance N` of start and stop: one instance of one app."""

from __future__ import annotations

import pytest

from wharf.control.commands._args import instance_of
from wharf.errors import UsageError


def test_no_instance_means_every_instance():
    assert instance_of("web", {}) is None


def test_an_instance_is_a_whole_number_of_one_app():
    assert instance_of("web", {"instance": 2}) == 2
    for bad in (-1, True, "1", 1.5):
        with pytest.raises(UsageError, match="--instance must be a whole number"):
            instance_of("web", {"instance": bad})
    with pytest.raises(UsageError, match="needs an app name"):
        instance_of(None, {"instance": 0})
