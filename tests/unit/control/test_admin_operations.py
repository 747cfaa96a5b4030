"""The admin API's operations table: routing, parameters, and the OpenAPI document built from
it."""

from __future__ import annotations

import pytest

from wharf.control.admin.openapi import document
from wharf.control.admin.operations import OPERATIONS, Kind, Param, match
from wharf.control.commands import COMMANDS
from wharf.errors import UsageError


def test_every_command_but_down_has_an_operation():
    assert {o.command for o in OPERATIONS} == set(COMMANDS) - {"down"}


def test_a_path_and_method_find_their_operation_and_parameters():
    operation, params, known = match("POST", "/api/apps/web/restart")
    assert operation is not None and operation.command == "restart"
    assert params == {"app": "web"} and known
    assert match("GET", "/api/apps/web/restart") == (None, {}, True)
    assert match("GET", "/api/apps/a/b/logs") == (None, {}, False)


def test_parameters_convert_and_say_what_is_wrong():
    count = Param("count", Kind.INTEGER, "", minimum=1, maximum=1000)
    assert count.convert("3") == 3
    for bad in ("three", "0", "1001", "1.5"):
        with pytest.raises(UsageError, match="count"):
            count.convert(bad)
    assert Param("follow", Kind.BOOLEAN, "").convert("true") is True
    with pytest.raises(UsageError):
        Param("timeout", Kind.NUMBER, "").convert("nan")


def test_the_document_describes_every_operation_with_its_parameters():
    paths = document()["paths"]
    for operation in OPERATIONS:
        described = paths[operation.path][operation.method.lower()]
        assert described["operationId"] == operation.id
        assert {p["name"] for p in described["parameters"]} == {p.name for p in
                                                                operation.params}
        assert "401" in described["responses"]
    assert paths["/metrics"]["get"]["security"] == []
    assert "security" not in document(metrics_auth=True)["paths"]["/metrics"]["get"]
