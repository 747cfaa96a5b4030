"""schemathesis against the live admin listener of a real daemon: every operation of
/api/openapi.json, no 5xx, every answer as the document says (status, content type, schema),
and the token required where the document says so.

The test's copy of the document narrows what schemathesis may generate, not what is checked:
`app` is one of the daemon's apps, `all` or an unknown name (random strings would only ever
meet 404), `count` is 1-3 and `timeout` at most 10 s, so that a generated call cannot start a
thousand processes or wait for a day on a shared CI machine. Few examples per operation keep
it to about a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.admin_fixture import Admin

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance,ignored_auth")
NARROWED = {"app": {"type": "string", "enum": ["web", "hup", "all", "nope"]},
            "count": {"type": "integer", "minimum": 1, "maximum": 3},
            "timeout": {"type": "number", "minimum": 1, "maximum": 10}}


def narrowed(document: dict[str, Any]) -> dict[str, Any]:
    """The document with the parameters the test must keep small narrowed."""
    for operations in document["paths"].values():
        for operation in operations.values():
            for param in operation.get("parameters", []):
                if param["name"] in NARROWED:
                    param["schema"] = NARROWED[param["name"]]
    return document


def test_every_operation_answers_as_its_openapi_document_says(admin: Admin, tmp_path: Path):
    answer = admin.request("GET", "/api/openapi.json")
    assert answer.status == 200
    document = answer.json()
    assert document["openapi"].startswith("3.")
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(narrowed(document)))
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", str(schema),
         "--url", f"http://127.0.0.1:{admin.port}", "-H", f"Authorization: Bearer {admin.token}",
         "--checks", CHECKS, "--phases", "examples,coverage,fuzzing", "-n", "3", "-w", "1",
         "--request-timeout", "30", "--no-shrink", "--seed", "1", "--warnings", "off"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    operations = sum(len(methods) for methods in document["paths"].values())
    assert f"Tested: {operations}" in run.stdout, run.stdout[-3000:]
