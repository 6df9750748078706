"""The `chatkeep` console script: `chatkeep dev` (local runtime) and `chatkeep token` (a dev JWT)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{what} must be KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def parameter_overrides(dev_args: list[str]) -> dict[str, str]:
    """The template parameter overrides (`--parameter KEY=VALUE`) among `chatkeep dev` arguments."""
    args, _ = _parser().parse_known_args(["dev", *dev_args])
    return _pairs(args.parameter, "--parameter")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatkeep", description="chatkeep local tools (no Docker, no AWS)")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="serve the API of template.yaml locally (API Gateway + Lambda + DynamoDB)")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--ws-port", type=int, help="WebSocket API port, when the template has one (default: --port + 1)")
    dev.add_argument("--endpoint-url", help="use this DynamoDB instead of the embedded moto server")
    dev.add_argument("--template", default="template.yaml")
    dev.add_argument("--clock-offset", type=float, default=0.0, help="start with chatkeep.clock shifted (s)")
    dev.add_argument("--record-events", metavar="DIR", help="write every event built to DIR as JSON")
    dev.add_argument("--no-stream", action="store_true", help="do not poll the table stream")
    dev.add_argument("--ttl-interval", type=float, default=5.0, help="seconds between TTL sweeps")
    dev.add_argument("--parameter", action="append", metavar="KEY=VALUE", help="template parameter override")
    dev.add_argument("--env", action="append", metavar="KEY=VALUE", help="function environment override")
    dev.add_argument("--state-dir", help="where the local DLQ file goes (default: a temp dir)")
    dev.add_argument("--bedrock", action="store_true",
                     help="agent turns call real Amazon Bedrock with your AWS credentials (default: the stand-in)")
    dev.add_argument("--log-level", default=os.environ.get("CHATKEEP_LOCAL_LOG_LEVEL", "INFO"))

    tok = sub.add_parser("token", help="print a bearer token that `chatkeep dev` accepts")
    tok.add_argument("--sub", required=True)
    tok.add_argument("--workspace", required=True)
    tok.add_argument("--name", help="given_name claim")
    tok.add_argument("--scope", help="space-separated scopes, e.g. chatkeep/service")
    tok.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    tok.add_argument("--audience", help="aud (default: the template's JwtAudience)")
    tok.add_argument("--issuer", help="iss (default: the template's JwtIssuer)")
    tok.add_argument("--template", default="template.yaml")
    tok.add_argument("--parameter", action="append", metavar="KEY=VALUE",
                     help="template parameter override, as given to `chatkeep dev`")
    return parser


def _token(args: argparse.Namespace) -> int:
    from chatkeep_local import jwt_auth
    from chatkeep_local.template import jwt_defaults, load_template

    template = load_template(args.template) if Path(args.template).is_file() else None
    defaults = jwt_defaults(template, _pairs(args.parameter, "--parameter"))
    claim = os.environ.get("WORKSPACE_CLAIM") or defaults["workspace_claim"]
    print(
        jwt_auth.make_token(
            args.sub,
            args.workspace,
            name=args.name,
            scope=args.scope,
            ttl=args.ttl,
            issuer=args.issuer or defaults["issuer"],
            audience=args.audience or defaults["audience"],
            workspace_claim=claim,
        )
    )
    return 0


def _configure_logging(level_name: str) -> None:
    """The runtime's own lines go to stderr through their own handler: the functions' loggers
    (Powertools, JSON) may reconfigure theirs, but never reformat these."""
    level = getattr(logging, str(level_name).upper(), logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ours = logging.getLogger("chatkeep_local")
    ours.handlers[:] = [handler]
    ours.setLevel(level)
    ours.propagate = False
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _dev(args: argparse.Namespace) -> int:
    from chatkeep_local.server import DevOptions, run_dev

    _configure_logging(args.log_level)
    if not Path(args.template).is_file():
        print(f"chatkeep dev: {args.template} not found (run it from the repository root)", file=sys.stderr)
        return 2
    # SIGTERM (e.g. from a test fixture) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    options = DevOptions(
        host=args.host,
        port=args.port,
        endpoint_url=args.endpoint_url,
        template=args.template,
        clock_offset=args.clock_offset,
        record_events=args.record_events,
        no_stream=args.no_stream,
        ttl_interval=args.ttl_interval,
        parameter_overrides=_pairs(args.parameter, "--parameter"),
        env_overrides=_pairs(args.env, "--env"),
        state_dir=args.state_dir,
        ws_port=args.ws_port,
        bedrock=args.bedrock,
    )
    return run_dev(options)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "token":
        return _token(args)
    return _dev(args)


if __name__ == "__main__":
    sys.exit(main())
