"""The `wharf status` table: the PORT and STATE cells."""

from wharf.cli.output import describe_port, describe_state, status_table


def row(**fields):
    base = {"kind": "instance", "app": "web", "instance": 0, "pid": 10, "state": "RUNNING",
            "port": 20000, "uptime_s": 3.0, "restarts": 0, "exit_code": None,
            "exit_signal": None, "reason": "", "last_restart": "", "listen": [],
            "uses_port": True, "next_try_in_s": None}
    return {**base, **fields}


def test_port_cell_is_the_listen_addresses_then_the_port_then_a_dash():
    assert describe_port(row(app="wharf-proxy", port=0, uses_port=False,
                             listen=["127.0.0.1:80", "[::1]:80"])) == "127.0.0.1:80,[::1]:80"
    assert describe_port(row()) == "20000"
    assert describe_port(row(uses_port=False)) == "-"


def test_port_cell_of_a_row_from_before_the_new_fields_is_the_port():
    old = row()
    del old["listen"], old["uses_port"]
    assert describe_port(old) == "20000"


def test_backoff_says_when_the_next_try_is():
    assert describe_state(row(state="BACKOFF", next_try_in_s=2.345)) == \
        "BACKOFF (next try in 2.3s)"
    assert describe_state(row(state="BACKOFF", next_try_in_s=125.0)) == \
        "BACKOFF (next try in 2m05s)"
    assert describe_state(row(state="BACKOFF")) == "BACKOFF"
    assert describe_state(row()) == "RUNNING"


def test_table_shows_both():
    text = status_table([row(state="BACKOFF", pid=None, next_try_in_s=1.0, uses_port=False,
                             reason="exited too quickly (exit status 1)")])
    assert "BACKOFF (next try in 1.0s)  -" in text
    assert "web.0: exited too quickly (exit status 1)" in text


def test_certs_table_shows_the_issuer_cn_and_when_renewal_is_due():
    from wharf.cli.output import certs_table

    rows = [{"name": "a.example", "source": "acme", "issuer": "CN=R10\\, x,O=Let's Encrypt",
             "not_after": 2_000_000.0, "next_renewal": 500.0, "last_error": ""},
            {"name": "b.example", "source": "acme", "issuer": "", "not_after": None,
             "next_renewal": 3_000_000.0, "last_error": "cannot reach the CA"}]
    lines = certs_table(rows, now=1000.0).splitlines()
    assert lines[1].split()[:4] == ["a.example", "acme", "R10\\,", "x"]
    assert " now " in lines[1]
    assert "(none yet)" in lines[2] and lines[2].endswith("cannot reach the CA")
