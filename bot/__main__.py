"""Command line: ``python -m bot [serve|demo|check|deliveries|redeliver|audit]``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.settings import Settings, SettingsError, load_dotenv, load_settings

log = logging.getLogger("bot")


def _settings(production: bool = False) -> Settings:
    env = dict(os.environ)
    load_dotenv(Path(".env"), env)
    return load_settings(env, production=production)


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.service import logs

    settings = _settings(args.production)
    logs.configure(settings.log_level, settings.log_format, settings.secrets())
    if not settings.has_credentials:
        # No credentials and not --production (load_settings refuses that): offer the GitHub
        # App manifest flow, which writes them to .env for the next start.
        from bot.service.setup import run_setup

        return run_setup(settings)
    from bot.service.app import create_app

    app = create_app(settings)
    log.info(
        "listening on http://%s:%d%s (GitHub API %s)",
        settings.host,
        settings.port,
        settings.webhook_path,
        settings.github_api_url,
    )
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        # our on_shutdown drains deliveries itself (its own 25 s); what aiohttp then waits for
        # is open HTTP requests, which answer in milliseconds
        shutdown_timeout=5.0,
        access_log=None,
    )
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    from bot.cli.deliveries import list_deliveries

    return list_deliveries(_settings(), limit=args.limit)


def cmd_redeliver(args: argparse.Namespace) -> int:
    from bot.cli.deliveries import redeliver

    return redeliver(_settings(production=True), args.id)


def cmd_check(args: argparse.Namespace) -> int:
    from bot.cli.check import run_check

    return run_check(Path(args.path), base=args.base, out=sys.stdout)


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.cli.demo import main as demo_main

    return demo_main(verbose=args.verbose)


def cmd_audit(args: argparse.Namespace) -> int:
    from bot.cli.audit import main as audit_main

    env = dict(os.environ)
    load_dotenv(Path(".env"), env)
    return audit_main(args, env)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Fleet promotion bot: a GitHub App for Flux fleet repos.",
    )
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the webhook service (default)")
    serve.add_argument(
        "--production",
        action="store_true",
        help="refuse to start without credentials (no setup page)",
    )
    serve.set_defaults(func=cmd_serve)
    demo = sub.add_parser("demo", help="run the whole story against the built-in fake GitHub")
    demo.add_argument("-v", "--verbose", action="store_true", help="show the service's log")
    demo.set_defaults(func=cmd_demo)
    check = sub.add_parser("check", help="check a local checkout of a fleet repo")
    check.add_argument("path", nargs="?", default=".")
    check.add_argument("--base", help="git ref to compare with (also runs the lineage rule)")
    check.set_defaults(func=cmd_check)
    deliveries = sub.add_parser("deliveries", help="list recent webhook deliveries")
    deliveries.add_argument("--limit", type=int, default=30)
    deliveries.set_defaults(func=cmd_deliveries)
    redeliver = sub.add_parser("redeliver", help="process a recorded delivery again")
    redeliver.add_argument("id")
    redeliver.set_defaults(func=cmd_redeliver)
    audit = sub.add_parser(
        "audit", help="report every merged change to an environment, exceptions first"
    )
    audit.add_argument("repo", metavar="OWNER/REPO")
    audit.add_argument("--env", default="prod", help="environment to audit (default: prod)")
    audit.add_argument("--since", help="first day (YYYY-MM-DD) or time (ISO 8601, UTC)")
    audit.add_argument("--until", help="last day (YYYY-MM-DD) or time (default: now)")
    audit.add_argument("--format", choices=("md", "csv", "json"), default="md")
    audit.set_defaults(func=cmd_audit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv or [])])
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
