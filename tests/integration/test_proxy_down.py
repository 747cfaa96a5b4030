"""A proxy that cannot run says so: in the daemon's log, and in `status`."""

from __future__ import annotations

from tests.integration.conftest import Wharf
from tests.integration.proxy_fixture import free_port


def test_a_fatal_proxy_is_logged_as_down_with_its_reason(wharf: Wharf) -> None:
    # The worker runs `python -m wharf.proxy.worker` in the project directory, so this module
    # shadows the real asyncio for it alone (the daemon runs elsewhere): it cannot start. It is
    # the worker's first import, so it fails well within startsecs even on a loaded machine.
    (wharf.root / "asyncio.py").write_text("raise ImportError('asyncio planted by the test')\n")
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{free_port()}"]

        [[routes]]
        path = "/"
        servers = ["127.0.0.1:{free_port()}"]
        """)
    wharf.up()
    row = wharf.wait_state("wharf-proxy", "FATAL", timeout=30)
    assert "exited too quickly" in row["reason"]
    log = wharf.daemon_log.read_text()
    line = next(x for x in log.splitlines() if "the proxy is down" in x)
    assert "wharf-proxy.0 is FATAL (exited too quickly" in line
    assert "wharf-proxy.err.log" in line
