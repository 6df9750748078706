"""The `chatkeep` console script: `chatkeep dev` (local runtime), `chatkeep invoke` (one function on sample events,
without Docker), `chatkeep token` (a dev JWT) and `chatkeep id` (an id's REST and GraphQL forms)."""

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


def _positive_seconds(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{seconds} s: a token's lifetime must be positive (e.g. 3600)")
    return seconds


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
    dev.add_argument("--metrics", action="store_true", help="print the functions' EMF metric documents")
    dev.add_argument("--inline", action="store_true",
                     help="every function and the embedded DynamoDB in this one process (a debugger; less faithful)")

    inv = sub.add_parser("invoke", help="run one function of template.yaml on events, as `sam local invoke` does, "
                                        "without Docker; prints the handler's result as JSON")
    inv.add_argument("function", metavar="FUNCTION", help="its logical id in the template, e.g. GraphqlApiFunction")
    inv.add_argument("-e", "--event", action="append", required=True, metavar="FILE",
                     help="event JSON (- reads stdin); repeat it to invoke once per file, in order")
    inv.add_argument("--env-vars", metavar="FILE", help="environment overrides in SAM's env.json format")
    inv.add_argument("--endpoint-url", help="use this DynamoDB instead of an embedded one started for the call")
    inv.add_argument("--parameter", action="append", metavar="KEY=VALUE", help="template parameter override")
    inv.add_argument("--template", default="template.yaml")
    inv.add_argument("--metrics", action="store_true", help="print the function's EMF metric documents (stderr)")
    inv.add_argument("--log-level", default=os.environ.get("CHATKEEP_LOCAL_LOG_LEVEL", "WARNING"),
                     help="the runtime's own log level (default WARNING)")

    tok = sub.add_parser("token", help="print a bearer token that `chatkeep dev` accepts")
    tok.add_argument("--sub", required=True)
    tok.add_argument("--workspace", required=True)
    tok.add_argument("--name", help="given_name claim")
    tok.add_argument("--scope", help="space-separated scopes, e.g. chatkeep/service")
    tok.add_argument("--ttl", type=_positive_seconds, default=None, help="lifetime in seconds (default 3600)")
    tok.add_argument("--audience", help="aud (default: the template's JwtAudience)")
    tok.add_argument("--issuer", help="iss (default: the template's JwtIssuer)")
    tok.add_argument("--template", default="template.yaml")
    tok.add_argument("--parameter", action="append", metavar="KEY=VALUE",
                     help="template parameter override, as given to `chatkeep dev`")

    ident = sub.add_parser("id", help="convert an id between its REST form (ses_c1s) and its GraphQL number (12345)")
    ident.add_argument("value", help="a prefixed id such as ses_c1s, or a number such as 12345")
    ident.add_argument("--kind", help="session, channel, agent or message (or ses, ch, agt, msg): for a number, "
                                      "the one form to print; for a prefixed id, the kind it must be")
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
            ttl=args.ttl or jwt_auth.DEFAULT_TTL,
            issuer=args.issuer or defaults["issuer"],
            audience=args.audience or defaults["audience"],
            workspace_claim=claim,
        )
    )
    return 0


def _id(args: argparse.Namespace) -> int:
    """`chatkeep id ses_c1s` -> 12345; `chatkeep id 12345 --kind session` -> ses_c1s (every kind without --kind)."""
    from chatkeep import ids
    from chatkeep.errors import ChatkeepError

    names = {kind.name.lower(): kind for kind in ids.Kind} | {kind.value: kind for kind in ids.Kind}
    kind = None
    if args.kind is not None:
        kind = names.get(args.kind.strip().lower())
        if kind is None:
            print(f"chatkeep id: unknown kind {args.kind!r}: one of {', '.join(k.name.lower() for k in ids.Kind)}",
                  file=sys.stderr)
            return 2
    value = args.value.strip()
    try:
        if value.isascii() and value.isdigit():
            number = int(value)
            if not 0 < number <= ids.MAX_ID:
                print(f"chatkeep id: {value} is out of range: ids are 1 to {ids.MAX_ID}", file=sys.stderr)
                return 2
            for each in [kind] if kind else list(ids.Kind):
                print(ids.encode(each, number) if kind else f"{each.name.lower():<8} {ids.encode(each, number)}")
            return 0
        prefix = value.partition("_")[0].lower()
        found = names.get(prefix) if "_" in value else None
        if found is None:
            print(f"chatkeep id: {value!r} is neither a number nor a prefixed id "
                  f"({', '.join(k.value + '_...' for k in ids.Kind)})", file=sys.stderr)
            return 2
        if kind is not None and found is not kind:
            print(f"chatkeep id: {value!r} is a {found.name.lower()} id, not a {kind.name.lower()} id",
                  file=sys.stderr)
            return 2
        print(ids.decode(found, value))
        return 0
    except ChatkeepError as exc:
        print(f"chatkeep id: {exc}", file=sys.stderr)
        return 2


def _invoke(args: argparse.Namespace) -> int:
    """Results (one JSON document per event, in order) are alone on stdout; everything else written to stdout
    while the functions run (their logs, EMF documents) goes to stderr, as `sam local invoke` splits them."""
    import json

    from chatkeep_local.invoke import InvokeOptions, InvokeRefused, invoke_events

    _configure_logging(args.log_level)
    options = InvokeOptions(function=args.function, events=args.event, template=args.template,
                            env_vars=args.env_vars, endpoint_url=args.endpoint_url,
                            parameter_overrides=_pairs(args.parameter, "--parameter"), metrics=args.metrics)
    sys.stdout.flush()
    results = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def show(outcome: object) -> None:
        results.write(json.dumps(outcome.result) + "\n")  # type: ignore[attr-defined]
        results.flush()

    try:
        outcomes = invoke_events(options, on_outcome=show)
    except InvokeRefused as exc:
        print(f"chatkeep invoke: {exc}", file=sys.stderr)
        return 2
    finally:
        sys.stdout.flush()
        os.dup2(results.fileno(), sys.stdout.fileno())
        results.close()
    return 1 if any(o.failed for o in outcomes) else 0


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
    from chatkeep_local.dev import run_dev
    from chatkeep_local.server import DevOptions

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
        metrics=args.metrics,
        inline=args.inline,
    )
    return run_dev(options)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "token":
        return _token(args)
    if args.command == "id":
        return _id(args)
    if args.command == "invoke":
        return _invoke(args)
    return _dev(args)


if __name__ == "__main__":
    sys.exit(main())
