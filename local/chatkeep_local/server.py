"""`chatkeep dev`: API Gateway (HTTP API) + JWT authorizer + Lambda + DynamoDB (moto) + Streams + TTL
+ SQS (moto) queues and their Lambda triggers, from template.yaml; moto in a process of its own
(chatkeep_local.moto_process) unless --inline. See docs/local-runtime.md."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatkeep_local import apigw, explorer, jwt_auth, local_endpoints, websocket_dev
from chatkeep_local import template as tpl
from chatkeep_local.addresses import http_url
from chatkeep_local.environments import (
    EnvironmentPool,
    IntegrationTimeout,
    InvocationError,
    Reaper,
    Throttled,
    own_environment,
)
from chatkeep_local.harness import reset_caches
from chatkeep_local.http_front import FrontHandler, HttpFront, with_list
from chatkeep_local.lambda_runtime import FunctionInvoker, HandlerNotFound
from chatkeep_local.moto_process import InProcessMoto, MotoProcess
from chatkeep_local.ports import PortUnavailable, unavailable
from chatkeep_local.queues import LocalQueues
from chatkeep_local.recorder import EventRecorder
from chatkeep_local.streams import BatchDispatcher, LocalDlq, StreamPoller, SweptKeys, dlq_path
from chatkeep_local.ttl import TtlSweeper
from chatkeep_local.websocket_template import websocket_apis

log = logging.getLogger("chatkeep_local")
http_log = logging.getLogger("chatkeep_local.http")

LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024  # synchronous invocation response payload limit
# Template parameters that differ locally, unless `--parameter` says otherwise: the deployed default of
# EnableIntrospection stays "false"; a laptop is where a schema explorer helps.
LOCAL_PARAMETER_DEFAULTS = {"EnableIntrospection": "true"}
DEV_TOKEN_TTL = 7 * 86400  # the banner's and the explorer's token
JWKS_URL_ENV = "JWT_JWKS_URL"


@dataclass
class DevOptions:
    host: str = "127.0.0.1"
    port: int = 3000
    endpoint_url: str | None = None
    template: str = "template.yaml"
    clock_offset: float = 0.0
    record_events: str | None = None
    no_stream: bool = False
    ttl_interval: float = 5.0
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    env_overrides: dict[str, str] = field(default_factory=dict)
    state_dir: str | None = None
    print_banner: bool = True
    ws_port: int | None = None  # the WebSocket API's port, if the template has one (None: port + 1)
    bedrock: bool = False  # agent turns call real Amazon Bedrock with the caller's credentials (bedrock_proxy)
    metrics: bool = False  # print the functions' EMF metric documents (off: POWERTOOLS_METRICS_DISABLED=true)
    # Every function, the stream consumer and moto in this one process (a debugger steps through all of it); less
    # faithful than the default (docs/local-runtime.md).
    inline: bool = False


class LocalRuntime:
    """Everything `chatkeep dev` runs. `start()` then `serve_forever()`; `shutdown()` stops it all."""

    def __init__(self, options: DevOptions):
        self.options = options
        self.template_path = Path(options.template).resolve()
        self.template = tpl.load_template(self.template_path)
        overrides = self.parameter_overrides = {**LOCAL_PARAMETER_DEFAULTS, **options.parameter_overrides}
        self.functions = tpl.functions(self.template, overrides)
        self.routes = tpl.routes(self.template, overrides)
        self.router = apigw.Router(self.routes)
        self.graphql_path = next((r.path for r in self.routes if r.path == "/graphql"), None)
        self.table_specs = tpl.tables(self.template, overrides)
        self.stream_src = tpl.stream_source(self.template, overrides)
        self.queues = LocalQueues(self.template, self.functions, overrides)  # refuses what would not deploy
        cors_api = self.routes[0].api_id if self.routes else "ServerlessHttpApi"
        self.cors = apigw.Cors(tpl.cors_configuration(self.template, cors_api, overrides))
        self.invokers: dict[str, FunctionInvoker | EnvironmentPool] = {
            lid: FunctionInvoker(spec) if options.inline else
            EnvironmentPool(spec, environment=functools.partial(self.function_environment, spec),
                            clock_offset=self._clock_offset)
            for lid, spec in self.functions.items()}
        self.reaper = Reaper({lid: inv for lid, inv in self.invokers.items() if isinstance(inv, EnvironmentPool)})
        self.declared_env: dict[str, str] = {}  # every function's variables in one (the process env, --inline)
        self.recorder = EventRecorder(options.record_events) if options.record_events else None
        self.swept = SweptKeys()
        self.moto: MotoProcess | InProcessMoto | None = None
        # moto in its own process (the default) or in this one (--inline: a debugger steps through it all)
        self.moto_in_process = options.inline
        self.endpoint_url: str | None = options.endpoint_url
        self.poller: StreamPoller | None = None
        self.sweeper: TtlSweeper | None = None
        self.dlq: LocalDlq | None = None
        self.httpd: HttpFront | None = None
        self.clock: Any = None
        self.model: Any = None  # the Bedrock stand-in (chatkeep_local.bedrock_standin.StandInModel)
        self.bedrock_proxy: Any = None
        if options.bedrock:  # the caller's credentials, before _set_environment replaces them with moto's
            from chatkeep_local.bedrock_proxy import BedrockProxy

            self.bedrock_proxy = BedrockProxy.from_caller(os.environ.get("AWS_REGION") or tpl.REGION)
        self.model_http: Any = None
        self.model_endpoint: str | None = None
        self.websocket: Any = None  # websocket_api.WebSocketApi, when the template declares a WebSocket API

    # ------------------------------------------------------------------------------------ start-up
    def start(self) -> None:
        self._listen()  # first: a busy port is one line, before anything is started or created
        self._spawn_moto()  # next: its interpreter starts while this one reads the template's functions
        self.prepare()
        self.reaper.start()
        self._start_stream()
        self._start_ttl()
        self._start_websocket()
        self._start_model()
        self._start_queue_pollers()  # last: a delivery finds every endpoint its function needs set

    def start_for_invoke(self) -> None:
        """`chatkeep invoke`: what a function finds when it runs (prepare), the WebSocket API's `@connections`
        endpoint when the template has one, and the model stand-in, on the port of the options (0: any); no
        stream poller, TTL sweeper or queue poller: one function runs on the events it is given, nothing else.
        moto runs in this process: one invocation at a time shares no GIL, and a short-lived command starts no
        second interpreter (nor leaves one behind)."""
        self._listen()
        self.moto_in_process = True
        self.prepare()
        self._start_websocket()
        self._start_model()
        threading.Thread(target=self.serve_forever, name="chatkeep-invoke-http", daemon=True).start()

    def prepare(self) -> None:
        """What a function finds when it runs: DynamoDB with the template's tables, its environment, the layer,
        the queues (`chatkeep invoke` stops here, plus the model stand-in)."""
        _load_client_models()  # while the moto process starts
        self._start_dynamodb()
        self._set_environment()
        self._set_jwks_url()
        self._create_tables()
        self._import_layer()
        self._start_queues()

    def _listen(self) -> None:
        host, port = self.options.host, self.options.port
        try:
            self.httpd = HttpFront((host, port), FrontHandler)
        except OSError as exc:
            raise unavailable(exc, host, port, "--port") from None
        self.httpd.runtime = self
        ws_port = self._ws_port()
        if ws_port and websocket_apis(self.template, self.parameter_overrides):
            try:  # bound for good once the runtime is ready (websocket_dev); checked now, before anything starts
                with socket.socket() as probe:
                    probe.bind((host, ws_port))
            except OSError as exc:
                self.httpd.server_close()
                self.httpd = None
                raise unavailable(exc, host, ws_port, "--ws-port") from None

    def _ws_port(self) -> int:
        if self.options.ws_port is not None:
            return self.options.ws_port
        return self.options.port + 1 if self.options.port else 0

    @property
    def url(self) -> str:
        assert self.httpd is not None
        return http_url(self.httpd.server_address)

    def _set_jwks_url(self) -> None:
        """The realtime function verifies connection_init tokens with the issuer's JWKS; locally that is the dev
        secret at /_local/jwks.json (unless the template or --env names another)."""
        if not os.environ.get(JWKS_URL_ENV):
            os.environ[JWKS_URL_ENV] = self.url + local_endpoints.JWKS_PATH

    def _start_model(self) -> None:
        """The Bedrock stand-in on the main port (Bedrock Runtime paths under /_local/bedrock, its control API
        under /_local/model/); the functions' bedrock-runtime clients find it through BEDROCK_ENDPOINT_URL."""
        from chatkeep_local.bedrock_standin import StandInConfig, StandInModel
        from chatkeep_local.bedrock_standin_http import BEDROCK_PREFIX, ENDPOINT_ENV, StandInHttp

        self.model = StandInModel(StandInConfig.from_env())
        self.model_http = StandInHttp(self.model, bedrock_prefix=BEDROCK_PREFIX, upstream=self.bedrock_proxy)
        self.model_endpoint = self.url + BEDROCK_PREFIX
        if ENDPOINT_ENV not in self.options.env_overrides:
            os.environ[ENDPOINT_ENV] = self.model_endpoint
        log.info("model: Bedrock stand-in at %s", os.environ.get(ENDPOINT_ENV))

    def _start_dynamodb(self) -> None:
        if self.endpoint_url:
            log.info("DynamoDB: %s (--endpoint-url)", self.endpoint_url)
            return
        self.endpoint_url = self._start_moto()
        where = "in this process" if isinstance(self.moto, InProcessMoto) else "its own process"
        log.info("DynamoDB: embedded moto server at %s (%s)", self.endpoint_url, where)

    def _spawn_moto(self) -> None:
        """Start the embedded moto server (every AWS service on one port, chatkeep_local.moto_process) when
        DynamoDB or SQS need it, without waiting for it to be ready."""
        if self.moto is None and (not self.endpoint_url or self.queues.specs):
            self.moto = (InProcessMoto() if self.moto_in_process else MotoProcess()).start()

    def _start_moto(self) -> str:
        """The embedded moto server, ready (patched for DynamoDB's and SQS's semantics); returns its endpoint."""
        if self.moto is None:
            self.moto = (InProcessMoto() if self.moto_in_process else MotoProcess()).start()
        return self.moto.wait_ready()

    def _set_environment(self) -> None:
        env: dict[str, str] = {}
        origin: dict[str, str] = {}
        for lid, spec in self.functions.items():
            for name, why in spec.unresolved_env.items():
                log.warning("%s: environment %s not set locally (%s)", lid, name, why)
            for name, value in spec.environment.items():
                if name in env and env[name] != value and self.options.inline:
                    log.warning(
                        "environment %s differs between %s (%r) and %s (%r); one process, keeping %r",
                        name, origin[name], env[name], lid, value, env[name],
                    )
                    continue
                env.setdefault(name, value)
                origin.setdefault(name, lid)
        self.declared_env = dict(env)
        if not self.options.metrics:
            env["POWERTOOLS_METRICS_DISABLED"] = "true"  # EMF documents are for CloudWatch, not a console
        env.update(self.options.env_overrides)
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(var, None)
        env.update(
            {
                "DYNAMODB_ENDPOINT_URL": str(self.endpoint_url),
                "AWS_REGION": tpl.REGION,
                "AWS_DEFAULT_REGION": tpl.REGION,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "CHATKEEP_CLOCK_OFFSET_SECONDS": str(self.options.clock_offset or 0),
            }
        )
        env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        os.environ.update(env)

    def function_environment(self, spec: tpl.FunctionSpec) -> dict[str, str]:
        """An execution environment's variables (environments.own_environment)."""
        return own_environment(spec, os.environ, self.declared_env, self.options.env_overrides)

    def _clock_offset(self) -> float:
        return float(self.clock.offset()) if self.clock else float(self.options.clock_offset or 0)

    def _create_tables(self) -> None:
        import boto3

        client = boto3.client("dynamodb", endpoint_url=self.endpoint_url, region_name=tpl.REGION)
        self.ddb = client
        created = tpl.create_tables(client, self.template, overrides=self.parameter_overrides)
        for lid in created:
            spec = self.table_specs[lid]
            extras = []
            if spec.stream_view_type:
                extras.append(f"stream {spec.stream_view_type}")
            if spec.ttl_attribute:
                extras.append(f"TTL {spec.ttl_attribute}")
            log.info("table %s%s", lid, f" ({', '.join(extras)})" if extras else "")

    def _import_layer(self) -> None:
        """The handlers import `chatkeep` from the layer: put the layers on sys.path, then make the
        package forget anything it cached from an earlier environment."""
        for spec in self.functions.values():
            for layer in spec.layers:
                if layer.is_dir() and str(layer) not in sys.path:
                    sys.path.append(str(layer))
        try:
            from chatkeep import clock

            clock.set_offset(float(self.options.clock_offset or 0))
            self.clock = clock
        except ImportError:
            log.warning("the chatkeep package is not importable: /_local/clock and TTL use real time")
        reset_caches()

    def dev_token(self) -> str:
        """The banner's token (sub dev-user, workspace dev, a week): one this template's authorizer accepts."""
        defaults = tpl.jwt_defaults(self.template, self.parameter_overrides)
        claim = os.environ.get("WORKSPACE_CLAIM") or defaults["workspace_claim"]
        return jwt_auth.make_token("dev-user", "dev", name="Dev", ttl=DEV_TOKEN_TTL, issuer=defaults["issuer"],
                                   audience=defaults["audience"], workspace_claim=claim)

    @property
    def introspection(self) -> bool:
        return os.environ.get("ENABLE_INTROSPECTION", "").lower() == "true"

    def now(self) -> float:
        return self.clock.now() if self.clock else time.time()

    def _start_queues(self) -> None:
        """SQS on the embedded moto server (started for it when DynamoDB is elsewhere) with the template's
        queues, before the stream (which may send to them); chatkeep_local.queues, .sqs_poller."""
        if not self.queues.specs:
            return
        self.queues.create(self._start_moto())
        os.environ.update(self.queues.environment())
        log.info("SQS: embedded moto server at %s", self.queues.endpoint_url)

    def _start_queue_pollers(self) -> None:
        if self.queues.specs:
            self.queues.start_pollers(self.invokers, on_event=self.recorder.sqs if self.recorder else None)

    def _start_stream(self) -> None:
        src = self.stream_src
        if src is None:
            log.info("stream: no DynamoDB stream event source in the template")
            return
        if self.options.no_stream:
            log.info("stream: disabled (--no-stream)")
            return
        invoker = self.invokers.get(src.function)
        if invoker is None or not invoker.exists:
            log.warning("stream: %s has no code yet; its stream is not polled", src.function)
            return
        if not src.enabled:
            log.info("stream: event source of %s is disabled in the template", src.function)
            return
        import boto3
        from botocore.config import Config

        streams = boto3.client(
            "dynamodbstreams",
            endpoint_url=self.endpoint_url,
            region_name=tpl.REGION,
            config=Config(account_id_endpoint_mode="disabled"),
        )
        self.dlq = LocalDlq(dlq_path(self.options.state_dir))
        recorder = self.recorder

        def on_event(event: dict[str, Any]) -> None:
            if recorder:
                recorder.stream(event, src.function)

        def invoke(event: dict[str, Any]) -> Any:
            started = time.perf_counter()
            try:
                return invoker.invoke(event)
            finally:
                http_log.info(
                    "STREAM %s %d record(s) %.1fms %s",
                    src.table, len(event["Records"]), (time.perf_counter() - started) * 1000, src.function,
                )

        dispatcher = BatchDispatcher(invoke, src, self.dlq, on_event=on_event)
        housekeeping = self.moto.housekeeping if self.moto is not None else None
        self.poller = StreamPoller(streams, src.table, src, dispatcher, swept=self.swept, housekeeping=housekeeping)
        self.poller.prime()
        self.poller.start()
        log.info(
            "stream: %s -> %s (BatchSize %d, window %ss, retries %s, bisect %s; DLQ %s)",
            src.table, src.function, src.batch_size, src.max_batching_window_s,
            src.max_retry_attempts, src.bisect_on_error, self.dlq.path,
        )

    def _start_ttl(self) -> None:
        ttl = {lid: spec.ttl_attribute for lid, spec in self.table_specs.items() if spec.ttl_attribute}
        if not ttl:
            return
        self.sweeper = TtlSweeper(self.ddb, ttl, self.swept, self.now, interval=self.options.ttl_interval)
        self.sweeper.start()
        log.info("TTL: sweeping %s every %ss", ", ".join(f"{t}.{a}" for t, a in ttl.items()),
                 self.options.ttl_interval)

    def _start_websocket(self) -> None:
        self.websocket = websocket_dev.start_for_dev(
            self.template, self.parameter_overrides, self.invokers, env_overrides=self.options.env_overrides,
            host=self.options.host, port=self._ws_port(), clock=self.now,
        )

    # -------------------------------------------------------------------------------------- running
    def serve_forever(self) -> None:
        assert self.httpd is not None
        self.httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        if self.model is not None:
            self.model.close()  # streams stalled by a fault end now
        if self.httpd is not None:
            threading.Thread(target=self.httpd.shutdown, daemon=True).start()
        if self.poller:
            self.poller.stop()
        self.queues.stop()
        if self.sweeper:
            self.sweeper.stop()
        if self.httpd is not None:
            self.httpd.server_close()
        if self.websocket is not None:
            self.websocket.stop()
        self.reaper.stop()  # and every environment
        if self.moto is not None:
            self.moto.stop()

    # ------------------------------------------------------------------------------ request handling
    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str,
               protocol: str) -> tuple[int, list[tuple[str, str]], bytes, str]:
        """-> (status, headers, body, function or '-') for one HTTP request."""
        raw_path, _, raw_query = target.partition("?")
        if raw_path.startswith("/_local/"):
            status, hdrs, data = local_endpoints.serve(self, method, raw_path, body)
            return status, hdrs, data, "_local"
        lower = {k.lower(): v for k, v in headers}
        if self.cors.is_preflight(method, lower):
            status, hdrs, data = self.cors.preflight(lower)
            return status, hdrs, data, "cors"
        if len(body) > apigw.PAYLOAD_LIMIT_BYTES:
            return (*with_list(apigw.TOO_LARGE), "-")
        match = self.router.match(method, raw_path)
        if match is None:
            if raw_path == self.graphql_path and explorer.wants_page(method, lower):
                return (*explorer.page(self.url + raw_path, self.dev_token(), self.introspection), "explorer")
            return (*with_list(apigw.NOT_FOUND), "-")
        route = match.route
        fn = route.function
        authorizer_ctx = None
        if route.authorizer is not None:
            try:
                claims = jwt_auth.verify(
                    jwt_auth.extract_token(lower.get(route.authorizer.identity_header)),
                    issuer=route.authorizer.issuer,
                    audiences=route.authorizer.audiences,
                    required_scopes=route.scopes,
                )
            except jwt_auth.AuthError as exc:
                status, hdrs_map, data = exc.response()
                return status, self.cors.decorate(list(hdrs_map.items()), lower.get("origin")), data, fn
            authorizer_ctx = jwt_auth.authorizer_context(claims, route.scopes)
        rid = apigw.request_id()
        event = apigw.build_event(
            route=route,
            method=method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            body=body,
            source_ip=source_ip,
            path_parameters=match.path_parameters,
            authorizer=authorizer_ctx,
            api_id=tpl.api_id_for(route.api_id),
            request_id_value=rid,
            protocol=protocol,
        )
        if self.recorder:
            self.recorder.api(event, fn)
        invoker = self.invokers.get(fn)
        started = time.perf_counter()
        limit_s = min(route.timeout_ms / 1000, apigw.INTEGRATION_TIMEOUT_S)
        try:
            if invoker is None:
                raise HandlerNotFound(f"route {route.route_key} names {fn}, which is not a function")
            if isinstance(invoker, EnvironmentPool):  # a throttled Lambda is an integration error, not a wait
                result = invoker.invoke_within(event, limit_s, throttle=True)
            else:
                result = invoker.invoke(event)
            status, hdrs, data = apigw.http_response(result)
            if len(data) > LAMBDA_RESPONSE_LIMIT:
                raise apigw.InvalidResponse(f"response of {len(data)} bytes exceeds Lambda's 6 MB limit")
        except apigw.InvalidResponse as exc:
            log.error("%s: invalid Lambda response for %s: %s", fn, route.route_key, exc)
            status, hdrs, data = with_list(apigw.INTERNAL_ERROR)
        except IntegrationTimeout:
            log.error("%s: no answer within %.0f s for %s: 503 (the invocation runs on to its Timeout)",
                      fn, limit_s, route.route_key)
            status, hdrs, data = with_list(apigw.SERVICE_UNAVAILABLE)
        except Throttled:  # API Gateway answers a Lambda throttle (429 from Invoke) with its 500
            status, hdrs, data = with_list(apigw.INTERNAL_ERROR)
        except InvocationError as exc:  # the environment logged the handler's own traceback ([ERROR] ...)
            log.error("%s: function error for %s: %s", fn, route.route_key, exc)
            status, hdrs, data = with_list(apigw.INTERNAL_ERROR)
        except Exception:
            log.error("%s: unhandled error for %s\n%s", fn, route.route_key, traceback.format_exc())
            status, hdrs, data = with_list(apigw.INTERNAL_ERROR)
        elapsed = time.perf_counter() - started
        if elapsed > limit_s and not isinstance(invoker, EnvironmentPool):  # --inline cannot stop waiting
            log.warning(
                "%s took %.1fs: API Gateway would have answered 503 after %.0fs", route.route_key, elapsed, limit_s
            )
        hdrs = self.cors.decorate(hdrs, lower.get("origin"))
        hdrs.append(("apigw-requestid", rid))
        return status, hdrs, data, fn


def _load_client_models() -> None:
    """Load botocore's models of the services the runtime calls (boto3 caches them for every later client)."""
    import boto3

    with contextlib.suppress(Exception):  # a broken AWS profile: _set_environment removes it before any real call
        for service in ("dynamodb", "dynamodbstreams", "sqs"):
            boto3.client(service, region_name=tpl.REGION)


__all__ = ["LOCAL_PARAMETER_DEFAULTS", "DevOptions", "LocalRuntime", "PortUnavailable"]
