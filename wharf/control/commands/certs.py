"""`wharf certs [--json] [--ca] [--renew NAME]`: every name Wharf serves a certificate for
(source file/acme/local, issuer, not-after, next renewal, last error); `--ca` prints the local
CA's certificate to trust; `--renew NAME` renews an ACME or local-CA name now and waits."""

from __future__ import annotations

import argparse
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command
from wharf.control.commands._args import add_timeout_argument, timeout_of
from wharf.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--json, --ca, --renew NAME, --timeout."""
    parser.add_argument("--json", action="store_true", help="print a JSON list (stable)")
    parser.add_argument("--ca", action="store_true",
                        help="print the local CA's certificate (PEM), to trust")
    parser.add_argument("--renew", metavar="NAME", default=None,
                        help="renew the certificate of NAME now (ACME or local CA)")
    add_timeout_argument(parser, "the renewal")


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> Any:
    """The rows, the CA's PEM, or the renewed name's row."""
    if args.get("ca"):
        return {"ca_pem": api.cert_ca()}
    name = args.get("renew")
    if name is not None:
        if not isinstance(name, str) or not name:
            raise UsageError("--renew needs a name")
        return [await api.renew_cert(name.lower().rstrip("."), timeout_of(args))]
    return api.cert_rows()


COMMAND = Command("certs", "list certificates; --ca prints the local CA; --renew NAME",
                  add_arguments, handle)
