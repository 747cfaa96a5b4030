"""`wharf`: parse the command line, run the command, print the result, exit with its code.

Exit codes: 0 success, 1 runtime failure (daemon not running, an app failed to start),
2 usage or config error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from wharf import __version__
from wharf.cli import output
from wharf.control.commands import COMMANDS
from wharf.errors import WharfError
from wharf.migrate import FORMATS


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=argparse.SUPPRESS,
                        help="config file (default ./wharf.toml)")
    parser = argparse.ArgumentParser(prog="wharf", parents=[common],
                                     description="Supervise apps and proxy traffic to them.")
    parser.add_argument("--version", action="version", version=f"wharf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    up = sub.add_parser("up", parents=[common], help="start the daemon and its apps")
    up.add_argument("-d", "--detach", action="store_true", help="run in the background")
    up.add_argument("--detached-child", action="store_true", help=argparse.SUPPRESS)
    check = sub.add_parser("check", parents=[common], help="validate the config file and exit")
    check.add_argument("--providers", action="store_true", help="also read and check what "
                       "the providers hold now (the files of [providers.file])")
    sub.add_parser("monit", parents=[common],
                   help="a live full-screen view: processes, logs, backends (q quits)")
    imp = sub.add_parser("import", help="make a wharf.toml from a supervisord.conf, PM2 "
                         "ecosystem file, Procfile, nginx.conf or haproxy.cfg")
    imp.add_argument("file", type=Path, nargs="+", help="the file(s) to import: a process "
                     "manager's and a proxy's make one wharf.toml")
    imp.add_argument("-o", "--output", type=Path, help="write here instead of to stdout")
    imp.add_argument("--format", choices=FORMATS, help="the file's format (default: guessed "
                     "from its name and content)")
    imp.add_argument("--env", help="for PM2: the env_NAME to use beside env")
    imp.add_argument("--force", action="store_true", help="replace an existing --output")
    startup = sub.add_parser("startup", help="write a service unit that starts Wharf at boot")
    managers = startup.add_subparsers(dest="manager", metavar="MANAGER", required=True)
    systemd = managers.add_parser("systemd", parents=[common], help="a systemd unit "
                                  "(Type=notify, reload, watchdog)")
    systemd.add_argument("--user", action="store_true", help="a user unit (~/.config/systemd/"
                         "user) rather than a system one (/etc/systemd/system)")
    systemd.add_argument("--print", action="store_true", dest="print_only",
                         help="print the unit instead of writing it")
    systemd.add_argument("--name", help="the unit's name (default: wharf-DIR, DIR the "
                         "config file's directory)")
    for command in COMMANDS.values():
        command.add_arguments(sub.add_parser(command.name, parents=[common], help=command.help))
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `wharf` console script."""
    args = build_parser().parse_args(argv)
    config_path = Path(getattr(args, "config", "wharf.toml"))
    try:
        code = run(args, config_path)
    except WharfError as exc:
        print(f"wharf: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def run(args: argparse.Namespace, config_path: Path) -> int:
    """Run one parsed command; return the exit code."""
    if args.command == "up":
        from wharf.cli.up import up

        return up(config_path, detach=args.detach, detached_child=args.detached_child)
    if args.command == "check":
        from wharf.config import load_config

        config = load_config(config_path)
        output.print_warnings(config)
        print(f"{config.path}: ok, {len(config.apps)} app(s)")
        return check_providers(config) if args.providers else 0
    if args.command == "import":
        from wharf.cli.migrate import import_command

        return import_command(args.file, args.output, args.format, args.env, args.force)
    if args.command == "startup":
        from wharf.cli.startup import startup_systemd

        return startup_systemd(config_path, args.user, args.print_only, args.name)
    if args.command == "monit":
        from wharf.cli.monit.run import monit

        return monit(config_path)
    if args.command == "down":
        from wharf.cli.up import down

        return down(config_path)
    return remote(args, config_path)


def check_providers(config: Any) -> int:
    """`check --providers`: each provider's sources, and every problem in them (exit 2)."""
    import logging

    from wharf.registry.registry import check_providers as read

    logging.getLogger("wharf.providers").disabled = True  # the daemon's log; printed below
    updates, issues = read(config)
    for update in updates:
        bad = {i.source for i in issues}
        print(f"{update.provider}: {len(update.known)} source(s), "
              f"{len([k for k in update.known if k not in bad])} ok")
    for issue in issues:
        print(f"wharf: {issue}", file=sys.stderr)
    return 2 if issues else 0


def remote(args: argparse.Namespace, config_path: Path) -> int:
    """Send a command to the daemon and print its answer."""
    from wharf.control.client import daemon_socket, stream

    path = daemon_socket(config_path)
    request = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    result: Any = None
    for message in stream(path, args.command, request):
        if "stream" in message:
            sys.stdout.write(message["data"])
            sys.stdout.flush()
        else:
            result = message.get("result")
    return show(args, result)


def show(args: argparse.Namespace, result: Any) -> int:
    """Print a command's result; return the exit code it implies."""
    if args.command == "status":
        print(json.dumps(result, indent=2) if args.json else output.status_table(result))
    elif args.command in ("start", "restart", "scale", "stop", "wait"):
        print(output.status_table(result))  # a failure to start is an error, exit 1
    elif args.command == "signal":
        for r in result:
            print(f"{r['app']}.{r['instance']}: {r['signal']} sent to pid {r['pid']}")
    elif args.command == "certs":
        if args.ca:
            sys.stdout.write(result["ca_pem"])
        else:
            print(json.dumps(result, indent=2) if args.json else output.certs_table(result))
        if args.renew is not None:
            return 0
    elif args.command == "traffic":
        print(json.dumps(result, indent=2))
    elif args.command == "reload":
        print(output.reload_summary(result))
        return 1 if result.get("failed") else 0
    return 0
