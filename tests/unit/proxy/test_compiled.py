"""The request path runs compiled when the build compiled it (make test asks for it)."""

import importlib
import os

import pytest

from setup import HOT_PATH


@pytest.mark.skipif(not os.environ.get("WHARF_EXPECT_COMPILED"), reason="not a compiled build")
@pytest.mark.parametrize("source", HOT_PATH)
def test_hot_path_module_is_compiled(source: str):
    module = importlib.import_module(source.removesuffix(".py").replace("/", "."))
    assert module.__file__ is not None and module.__file__.endswith(".so"), module.__file__
