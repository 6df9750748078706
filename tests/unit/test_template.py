"""The deployment contract of template.yaml (DESIGN.md sections 2, 5, 6; docs/architecture.md tables).

Each `check_*` function takes a loaded template (plain data, intrinsics in long form) and returns a
list of violations, so the tests can run the same checks on mutated copies and show that they fail
when the contract is broken (a route loses its authorizer, the stream loses ReportBatchItemFailures...).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chatkeep_local.template import load_template

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"

API_FUNCTIONS = ("GraphqlApiFunction", "RestApiFunction")
STREAM_FUNCTION = "StreamProcessorFunction"
TABLES = ("ChatTable", "SearchIndexTable", "IdempotencyTable", "ConnectionsTable")
# DESIGN.md section 9: the functions that push to WebSocket connections (execute-api:ManageConnections).
PUSHING_FUNCTIONS = ("RealtimeFunction", "StreamProcessorFunction", "AgentTurnFunction")

# DESIGN.md section 5 (REST) and section 4 (GraphQL): (method, path) -> function.
PROTECTED_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/graphql"): "GraphqlApiFunction",
    ("POST", "/v1/channels"): "RestApiFunction",
    ("GET", "/v1/channels/{channel_id}"): "RestApiFunction",
    ("POST", "/v1/channels/{channel_id}/sessions"): "RestApiFunction",
    ("GET", "/v1/channels/{channel_id}/sessions"): "RestApiFunction",
    ("GET", "/v1/channels/{channel_id}/sessions/search"): "RestApiFunction",
    ("POST", "/v1/channels/{channel_id}/messages"): "RestApiFunction",
    ("GET", "/v1/sessions/{session_id}"): "RestApiFunction",
    ("PATCH", "/v1/sessions/{session_id}"): "RestApiFunction",
    ("POST", "/v1/sessions/{session_id}/close"): "RestApiFunction",
    ("DELETE", "/v1/sessions/{session_id}"): "RestApiFunction",
    ("GET", "/v1/sessions/{session_id}/messages"): "RestApiFunction",
    ("POST", "/v1/sessions/{session_id}/messages"): "RestApiFunction",
    ("POST", "/v1/agents"): "RestApiFunction",
    ("GET", "/v1/agents"): "RestApiFunction",
    ("GET", "/v1/agents/{agent_id}"): "RestApiFunction",
    # DESIGN.md section 8 (agent turns)
    ("POST", "/v1/sessions/{session_id}/turn/cancel"): "RestApiFunction",
    ("POST", "/v1/sessions/{session_id}/turn"): "RestApiFunction",
    ("GET", "/v1/usage"): "RestApiFunction",
}
PUBLIC_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): "RestApiFunction",
    ("GET", "/docs"): "RestApiFunction",
}

# Environment variables the layer's Settings reads (layers/common/chatkeep/settings.py).
REQUIRED_ENV = {
    "CHAT_TABLE_NAME": {"Ref": "ChatTable"},
    "SEARCH_TABLE_NAME": {"Ref": "SearchIndexTable"},
    "IDEMPOTENCY_TABLE_NAME": {"Ref": "IdempotencyTable"},
    "SESSION_IDLE_TIMEOUT_SECONDS": {"Ref": "SessionIdleTimeoutSeconds"},
    "RETENTION_DAYS": {"Ref": "RetentionDays"},
    "ENABLE_INTROSPECTION": {"Ref": "EnableIntrospection"},
    "WORKSPACE_CLAIM": {"Ref": "WorkspaceClaim"},
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
    "POWERTOOLS_SERVICE_NAME": "chatkeep",
    "POWERTOOLS_METRICS_NAMESPACE": "Chatkeep",
}

PARAMETER_DEFAULTS = {
    "JwtIssuer": "chatkeep-local",
    "JwtAudience": "chatkeep",
    "CorsAllowOrigins": "*",
    "SessionIdleTimeoutSeconds": 86400,
    "RetentionDays": 30,
    "LogLevel": "INFO",
    "EnableIntrospection": "false",
    "WorkspaceClaim": "workspace_id",
    "LogRetentionDays": 30,
    "AlarmEmail": "",
    "Tracing": "Disabled",
    "KmsKeyArn": "",
    "EnableSnapStart": "false",
    "DeploymentStrategy": "Canary10Percent5Minutes",
    "GraphqlApiReservedConcurrency": 0,
    "RestApiReservedConcurrency": 0,
    "StreamProcessorReservedConcurrency": 0,
    "AgentTurnReservedConcurrency": 0,
    "RealtimeReservedConcurrency": 0,
    "JwtJwksUrl": "",
    "DailyTokenQuota": 0,
    "AgentTurnMaxConcurrency": 10,
    "ApiThrottlingRateLimit": 500,
    "ApiThrottlingBurstLimit": 1000,
}

OUTPUTS = (
    "ApiUrl",
    "GraphqlUrl",
    "WebSocketUrl",
    "ChatTableName",
    "SearchIndexTableName",
    "IdempotencyTableName",
    "StreamDlqUrl",
    "AlarmTopicArn",
)


# ------------------------------------------------------------------------------------------ helpers


def resources_of(t: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in t.get("Resources", {}).items() if v.get("Type") == rtype}


def props(t: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return t.get("Resources", {}).get(logical_id, {}).get("Properties") or {}


def ref_name(value: Any) -> str | None:
    """'X' for {'Ref': 'X'} or {'Fn::GetAtt': ['X', ...]}, else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        att = value.get("Fn::GetAtt")
        if att:
            return att[0] if isinstance(att, list) else str(att).split(".")[0]
    return None


def mentions(value: Any, name: str) -> bool:
    """Does `value` reference resource `name` anywhere (Ref, GetAtt, Sub ${name...})?"""
    if isinstance(value, dict):
        if ref_name(value) == name:
            return True
        return any(mentions(v, name) for v in value.values())
    if isinstance(value, list):
        return any(mentions(v, name) for v in value)
    if isinstance(value, str):
        return f"${{{name}}}" in value or f"${{{name}." in value
    return False


def http_api_events(t: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(function, event name, event properties) of every HttpApi event."""
    out = []
    for fn, res in resources_of(t, "AWS::Serverless::Function").items():
        for name, ev in ((res.get("Properties") or {}).get("Events") or {}).items():
            if ev.get("Type") == "HttpApi":
                out.append((fn, name, ev.get("Properties") or {}))
    return out


def if_branches(value: Any) -> list[Any]:
    """Both outcomes of a Fn::If (minus AWS::NoValue); [value] otherwise."""
    if isinstance(value, dict) and "Fn::If" in value:
        _, a, b = value["Fn::If"]
        return [v for v in (a, b) if v != {"Ref": "AWS::NoValue"}]
    return [value]


# ------------------------------------------------------------------------------------------- checks


def check_routes(t: dict[str, Any]) -> list[str]:
    """Every DESIGN.md route exists on HttpApi, on the right function, behind the default JWT
    authorizer (docs routes: Authorizer NONE); nothing else is public."""
    v: list[str] = []
    api = props(t, "HttpApi")
    auth = api.get("Auth") or {}
    default = auth.get("DefaultAuthorizer")
    authorizers = auth.get("Authorizers") or {}
    if not default or default not in authorizers:
        v.append("HttpApi has no DefaultAuthorizer among its Authorizers")
    else:
        a = authorizers[default]
        jwt = {k.lower(): val for k, val in (a.get("JwtConfiguration") or {}).items()}
        if jwt.get("issuer") != {"Ref": "JwtIssuer"}:
            v.append(f"authorizer {default}: issuer is not the JwtIssuer parameter")
        if jwt.get("audience") != {"Ref": "JwtAudience"}:
            v.append(f"authorizer {default}: audience is not the JwtAudience parameter")
        if a.get("IdentitySource") != "$request.header.Authorization":
            v.append(f"authorizer {default}: identity source is not $request.header.Authorization")

    seen: dict[tuple[str, str], tuple[str, Any]] = {}
    for fn, name, p in http_api_events(t):
        key = (str(p.get("Method", "")).upper(), str(p.get("Path", "")))
        if ref_name(p.get("ApiId")) != "HttpApi":
            v.append(f"{fn}.{name} ({key[0]} {key[1]}) is not on HttpApi")
        authorizer = (p.get("Auth") or {}).get("Authorizer", default)
        seen[key] = (fn, authorizer)
    for key, fn in {**PROTECTED_ROUTES, **PUBLIC_ROUTES}.items():
        if key not in seen:
            v.append(f"route {key[0]} {key[1]} is missing")
        elif seen[key][0] != fn:
            v.append(f"route {key[0]} {key[1]} goes to {seen[key][0]}, expected {fn}")
    for key, (_fn, authorizer) in seen.items():
        if key in PUBLIC_ROUTES:
            if authorizer != "NONE":
                v.append(f"route {key[0]} {key[1]} must be public (Authorizer: NONE)")
        elif not default or authorizer != default:
            v.append(f"route {key[0]} {key[1]} is not behind the JWT authorizer {default!r} ({authorizer!r})")

    cors = api.get("CorsConfiguration") or {}
    if cors.get("AllowOrigins") != {"Ref": "CorsAllowOrigins"}:
        v.append("CORS origins do not come from CorsAllowOrigins")
    if set(cors.get("AllowHeaders") or []) != {"Authorization", "Content-Type", "Idempotency-Key", "X-Workspace-Id"}:
        v.append("CORS headers differ from Authorization, Content-Type, Idempotency-Key, X-Workspace-Id")
    if set(cors.get("AllowMethods") or []) != {"GET", "POST", "PATCH", "DELETE", "OPTIONS"}:
        v.append("CORS methods differ from GET POST PATCH DELETE OPTIONS")
    return v


def _keys(schema: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in schema or []]


def _index(p: dict[str, Any], kind: str, name: str) -> dict[str, Any] | None:
    return next((i for i in p.get(kind) or [] if i.get("IndexName") == name), None)


def _check_table(
    t: dict[str, Any],
    table: str,
    keys: list[tuple[str, str]],
    indexes: dict[tuple[str, str], tuple[list[tuple[str, str]], str]],
    ttl: str | None,
    stream: str | None,
    pitr: bool,
) -> list[str]:
    v: list[str] = []
    res = t.get("Resources", {}).get(table)
    if not res or res.get("Type") != "AWS::DynamoDB::Table":
        return [f"{table} is not an AWS::DynamoDB::Table"]
    p = res.get("Properties") or {}
    for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
        if res.get(policy) != "Retain":
            v.append(f"{table}: {policy} is not Retain")
    if p.get("BillingMode") != "PAY_PER_REQUEST":
        v.append(f"{table}: not on-demand (PAY_PER_REQUEST)")
    if _keys(p.get("KeySchema")) != keys:
        v.append(f"{table}: key schema {_keys(p.get('KeySchema'))} != {keys}")
    declared = {a["AttributeName"]: a["AttributeType"] for a in p.get("AttributeDefinitions") or []}
    for (kind, name), (ikeys, projection) in indexes.items():
        idx = _index(p, kind, name)
        if idx is None:
            v.append(f"{table}: {kind} {name} is missing")
            continue
        if _keys(idx.get("KeySchema")) != ikeys:
            v.append(f"{table}: {name} keys {_keys(idx.get('KeySchema'))} != {ikeys}")
        if (idx.get("Projection") or {}).get("ProjectionType") != projection:
            v.append(f"{table}: {name} projection is not {projection}")
        for attr, _ in ikeys:
            if declared.get(attr) != "S":
                v.append(f"{table}: index attribute {attr} is not declared as S")
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        for idx in p.get(kind) or []:
            if (kind, idx.get("IndexName")) not in indexes:
                v.append(f"{table}: undocumented index {idx.get('IndexName')}")
    ttl_spec = p.get("TimeToLiveSpecification") or {}
    if ttl and (ttl_spec.get("AttributeName") != ttl or ttl_spec.get("Enabled") is not True):
        v.append(f"{table}: TTL on {ttl!r} is not enabled")
    view = (p.get("StreamSpecification") or {}).get("StreamViewType")
    if view != stream:
        v.append(f"{table}: stream view type {view!r} != {stream!r}")
    if pitr and (p.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled") is not True:
        v.append(f"{table}: point-in-time recovery is off")
    sse = p.get("SSESpecification")
    if sse is not None and not (isinstance(sse, dict) and "Fn::If" in sse and sse["Fn::If"][0] == "UseKms"):
        v.append(f"{table}: SSE must be the optional customer-managed key (Fn::If UseKms)")
    return v


def check_tables(t: dict[str, Any]) -> list[str]:
    """Tables exactly as docs/architecture.md."""
    pk_sk = [("pk", "HASH"), ("sk", "RANGE")]
    return (
        _check_table(
            t,
            "ChatTable",
            pk_sk,
            {
                ("GlobalSecondaryIndexes", "gsi1"): ([("gsi1pk", "HASH"), ("gsi1sk", "RANGE")], "ALL"),
                ("LocalSecondaryIndexes", "lsi1"): ([("pk", "HASH"), ("lsi1sk", "RANGE")], "KEYS_ONLY"),
            },
            ttl="purge_at",
            stream="NEW_AND_OLD_IMAGES",
            pitr=True,
        )
        + _check_table(
            t,
            "SearchIndexTable",
            pk_sk,
            {("GlobalSecondaryIndexes", "by_session"): ([("spk", "HASH"), ("sk", "RANGE")], "KEYS_ONLY")},
            ttl=None,
            stream=None,
            pitr=False,
        )
        + _check_table(t, "IdempotencyTable", [("id", "HASH")], {}, ttl="expiration", stream=None, pitr=False)
        # Ephemeral (connections live at most 2 h): TTL, subscribers by topic.
        + _check_table(
            t,
            "ConnectionsTable",
            pk_sk,
            {("GlobalSecondaryIndexes", "by_topic"): ([("topic", "HASH"), ("pk", "RANGE")], "ALL")},
            ttl="expires_at",
            stream=None,
            pitr=False,
        )
    )


def check_functions(t: dict[str, Any]) -> list[str]:
    """Runtime, layer, handlers and the environment the layer's Settings reads."""
    v: list[str] = []
    glob = (t.get("Globals") or {}).get("Function") or {}
    if glob.get("Runtime") != "python3.13":
        v.append("Globals.Function.Runtime is not python3.13")
    if glob.get("Architectures") != ["arm64"]:
        v.append("Globals.Function.Architectures is not [arm64]")
    if [ref_name(x) for x in glob.get("Layers") or []] != ["CommonLayer"]:
        v.append("Globals.Function.Layers is not [CommonLayer]")
    env = (glob.get("Environment") or {}).get("Variables") or {}
    for name, value in REQUIRED_ENV.items():
        if env.get(name) != value:
            v.append(f"environment {name} = {env.get(name)!r}, expected {value!r}")
    if "POWERTOOLS_TRACE_DISABLED" not in env:
        v.append("environment POWERTOOLS_TRACE_DISABLED is missing")
    layer = t.get("Resources", {}).get("CommonLayer") or {}
    if (
        layer.get("Type") != "AWS::Serverless::LayerVersion"
        or (layer.get("Metadata") or {}).get("BuildMethod") != "python3.13"
    ):
        v.append("CommonLayer is not a python3.13-built AWS::Serverless::LayerVersion")
    if (layer.get("Properties") or {}).get("ContentUri") != "layers/common":
        v.append("CommonLayer ContentUri is not layers/common")
    expected = {
        "GraphqlApiFunction": "functions/graphql_api/",
        "RestApiFunction": "functions/rest_api/",
        STREAM_FUNCTION: "functions/stream_processor/",
        "RealtimeFunction": "functions/realtime/",
    }
    found = resources_of(t, "AWS::Serverless::Function")
    for fn, code_uri in expected.items():
        p = (found.get(fn) or {}).get("Properties") or {}
        if fn not in found:
            v.append(f"{fn} is missing")
            continue
        if p.get("CodeUri") != code_uri or p.get("Handler") != "app.lambda_handler":
            v.append(f"{fn}: CodeUri/Handler are not {code_uri} / app.lambda_handler")
    for fn in API_FUNCTIONS:
        p = (found.get(fn) or {}).get("Properties") or {}
        apply_on = (p.get("SnapStart") or {}).get("ApplyOn")
        if apply_on != {"Fn::If": ["SnapStartOn", "PublishedVersions", "None"]}:
            v.append(f"{fn}: SnapStart is not driven by EnableSnapStart")
    return v


def check_log_groups(t: dict[str, Any]) -> list[str]:
    """Every function logs to its own log group, named /aws/lambda/<function name>, with retention."""
    v: list[str] = []
    groups = resources_of(t, "AWS::Logs::LogGroup")
    used: dict[str, str] = {}
    for fn, res in resources_of(t, "AWS::Serverless::Function").items():
        p = res.get("Properties") or {}
        group = ref_name((p.get("LoggingConfig") or {}).get("LogGroup"))
        if group not in groups:
            v.append(f"{fn}: LoggingConfig.LogGroup is not a log group of the template")
            continue
        if group in used:
            v.append(f"{fn} shares log group {group} with {used[group]}")
        used[group] = fn
        gp = groups[group].get("Properties") or {}
        if gp.get("RetentionInDays") != {"Ref": "LogRetentionDays"}:
            v.append(f"{group}: RetentionInDays is not LogRetentionDays")
        fname = (p.get("FunctionName") or {}).get("Fn::Sub") if isinstance(p.get("FunctionName"), dict) else None
        lname = gp.get("LogGroupName")
        lname = lname.get("Fn::Sub") if isinstance(lname, dict) else lname
        if not fname or lname != f"/aws/lambda/{fname}":
            v.append(f"{group}: name {lname!r} is not /aws/lambda/<{fn} FunctionName>")
    return v


def _event(t: dict[str, Any], fn: str, etype: str) -> dict[str, Any] | None:
    for ev in (props(t, fn).get("Events") or {}).values():
        if ev.get("Type") == etype:
            return ev.get("Properties") or {}
    return None


def _alarm_on(t: dict[str, Any], namespace: str, metric: str, dim_value_of: str) -> list[dict[str, Any]]:
    out = []
    for res in resources_of(t, "AWS::CloudWatch::Alarm").values():
        p = res.get("Properties") or {}
        dims = p.get("Dimensions") or []
        if (
            p.get("Namespace") == namespace
            and p.get("MetricName") == metric
            and any(ref_name(d.get("Value")) == dim_value_of for d in dims)
        ):
            out.append(p)
    return out


def check_stream(t: dict[str, Any]) -> list[str]:
    """The stream function's event source: batch failures reported, bisect, bounded retries, DLQ."""
    v: list[str] = []
    ev = _event(t, STREAM_FUNCTION, "DynamoDB")
    if ev is None:
        return [f"{STREAM_FUNCTION} has no DynamoDB stream event"]
    if ev.get("Stream") != {"Fn::GetAtt": ["ChatTable", "StreamArn"]}:
        v.append("stream event does not read ChatTable's stream")
    if "ReportBatchItemFailures" not in (ev.get("FunctionResponseTypes") or []):
        v.append("stream event lacks FunctionResponseTypes: [ReportBatchItemFailures]")
    if ev.get("BisectBatchOnFunctionError") is not True:
        v.append("stream event lacks BisectBatchOnFunctionError: true")
    retries = ev.get("MaximumRetryAttempts")
    if not isinstance(retries, int) or not 0 <= retries <= 10:
        v.append(f"stream retries are not bounded (MaximumRetryAttempts={retries!r})")
    if not isinstance(ev.get("MaximumRecordAgeInSeconds"), int) or ev["MaximumRecordAgeInSeconds"] < 0:
        v.append("stream event has no MaximumRecordAgeInSeconds bound")
    if ev.get("StartingPosition") != "TRIM_HORIZON":
        v.append("stream event does not start at TRIM_HORIZON")
    on_failure = (ev.get("DestinationConfig") or {}).get("OnFailure") or {}
    dlq = ref_name(on_failure.get("Destination"))
    if on_failure.get("Type") != "SQS" or dlq not in resources_of(t, "AWS::SQS::Queue"):
        v.append("stream event has no SQS on-failure destination")
    elif not _alarm_on(t, "AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq):
        v.append(f"no alarm on the depth of {dlq}")
    if not _alarm_on(t, "AWS/Lambda", "IteratorAge", STREAM_FUNCTION):
        v.append("no IteratorAge alarm on the stream function")
    return v


def check_alarms(t: dict[str, Any]) -> list[str]:
    """5xx rate, errors and throttles per function; every alarm notifies AlarmTopic."""
    v: list[str] = []
    for fn in resources_of(t, "AWS::Serverless::Function"):
        for metric in ("Errors", "Throttles"):
            if not _alarm_on(t, "AWS/Lambda", metric, fn):
                v.append(f"no {metric} alarm on {fn}")
    api_5xx = False
    for res in resources_of(t, "AWS::CloudWatch::Alarm").values():
        for m in (res.get("Properties") or {}).get("Metrics") or []:
            metric = ((m.get("MetricStat") or {}).get("Metric")) or {}
            if metric.get("Namespace") == "AWS/ApiGateway" and metric.get("MetricName") == "5xx":
                api_5xx = True
    if not api_5xx:
        v.append("no alarm on the API's 5xx")
    v += _table_throttle_alarms(t)
    for name, res in resources_of(t, "AWS::CloudWatch::Alarm").items():
        if [ref_name(a) for a in (res.get("Properties") or {}).get("AlarmActions") or []] != ["AlarmTopic"]:
            v.append(f"{name} does not notify AlarmTopic")
    sub = t.get("Resources", {}).get("AlarmEmailSubscription") or {}
    if sub.get("Condition") != "HasAlarmEmail":
        v.append("the e-mail subscription is not conditional on AlarmEmail")
    return v


def _table_throttle_alarms(t: dict[str, Any]) -> list[str]:
    """Every table, and each of its global secondary indexes, has its read and write throttle events alarmed on: a
    partition key past its limit shows there first (docs/architecture.md, "Limits and scale")."""
    watched: set[tuple[str, str | None, str]] = set()
    for res in resources_of(t, "AWS::CloudWatch::Alarm").values():
        for m in (res.get("Properties") or {}).get("Metrics") or []:
            metric = ((m.get("MetricStat") or {}).get("Metric")) or {}
            if metric.get("Namespace") != "AWS/DynamoDB":
                continue
            dims = {d.get("Name"): d.get("Value") for d in metric.get("Dimensions") or []}
            watched.add((ref_name(dims.get("TableName")), dims.get("GlobalSecondaryIndexName"),
                         metric.get("MetricName")))
    v: list[str] = []
    for table, res in resources_of(t, "AWS::DynamoDB::Table").items():
        indexes = [None] + [g["IndexName"] for g in (res.get("Properties") or {}).get("GlobalSecondaryIndexes") or []]
        for index in indexes:
            for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
                if (table, index, metric) not in watched:
                    v.append(f"no {metric} alarm on {table}" + (f" index {index}" if index else ""))
    return v


def grants(t: dict[str, Any], fn: str) -> dict[str, set[str]]:
    """What `fn` may do to each table/queue: connector permissions plus any role statement naming it."""
    out: dict[str, set[str]] = {}
    for res in resources_of(t, "AWS::Serverless::Connector").values():
        p = res.get("Properties") or {}
        src, dst = (p.get("Source") or {}).get("Id"), (p.get("Destination") or {}).get("Id")
        perms = set(p.get("Permissions") or [])
        if src == fn:
            out.setdefault(dst, set()).update(perms)
        if dst == fn and src in TABLES:
            out.setdefault(f"{src}.stream", set()).update(perms)
        elif dst == fn:  # an event source (a queue the function consumes)
            out.setdefault(f"{src}.events", set()).update(perms)
    fp = props(t, fn)
    role = ref_name(fp.get("Role"))
    policies = list(props(t, role).get("Policies") or []) if role else []
    if isinstance(fp.get("Policies"), list):  # SAM policy templates / inline policies on the function
        policies += fp["Policies"]
    for target in (*TABLES, *resources_of(t, "AWS::SQS::Queue")):
        if mentions(policies, target):
            out.setdefault(target, set()).add("RolePolicy")
    return out


def check_least_privilege(t: dict[str, Any]) -> list[str]:
    """API functions: ChatTable read/write, SearchIndexTable read only (REST: + IdempotencyTable);
    the stream function never touches IdempotencyTable; no wildcard resources but X-Ray's."""
    v: list[str] = []
    want = {
        "GraphqlApiFunction": {"ChatTable": {"Read", "Write"}, "SearchIndexTable": {"Read"}},
        "RestApiFunction": {
            "ChatTable": {"Read", "Write"},
            "SearchIndexTable": {"Read"},
            "IdempotencyTable": {"Read", "Write"},
        },
        STREAM_FUNCTION: {
            "ChatTable": {"Read", "Write"},
            "ChatTable.stream": {"Read"},
            "SearchIndexTable": {"Read", "Write"},
            "StreamDlq": {"RolePolicy"},
            "TurnQueue": {"RolePolicy"},  # sends queued agent turns
            "ConnectionsTable": {"Read", "Write"},  # subscribers of a topic; drops stale connections
        },
        "AgentTurnFunction": {"ChatTable": {"Read", "Write"}, "TurnQueue.events": {"Read", "Write"},
                              "ConnectionsTable": {"Read", "Write"}},
        # Authorizes a subscription by reading the session or todo: never writes the chat table.
        "RealtimeFunction": {"ConnectionsTable": {"Read", "Write"}, "ChatTable": {"Read"}},
    }
    for fn, expected in want.items():
        got = grants(t, fn)
        if got != expected:
            v.append(f"{fn} may {got}, expected exactly {expected}")
    for fn, res in resources_of(t, "AWS::Serverless::Function").items():
        p = res.get("Properties") or {}
        role = ref_name(p.get("Role"))
        if role not in resources_of(t, "AWS::IAM::Role"):
            v.append(f"{fn} has no dedicated role (SAM's default role adds AWS managed policies on '*')")
            continue
        rp = props(t, role)
        if rp.get("ManagedPolicyArns"):
            v.append(f"{role} attaches managed policies")
        for policy in rp.get("Policies") or []:
            for stmt in (policy.get("PolicyDocument") or {}).get("Statement") or []:
                for s in if_branches(stmt):
                    resources = s.get("Resource")
                    resources = resources if isinstance(resources, list) else [resources]
                    actions = s.get("Action")
                    actions = actions if isinstance(actions, list) else [actions]
                    if "*" in resources and not all(str(a).startswith("xray:") for a in actions):
                        v.append(f"{role}: {actions} on Resource '*'")
    return v


def _rollback_alarm_violations(t: dict[str, Any], fn: str, alarm: str | None) -> tuple[str | None, list[str]]:
    """The metric of a rollback alarm, and what is wrong with it: it must watch the version being
    rolled out (ExecutedVersion of the function's published version), not the whole function."""
    res = t.get("Resources", {}).get(alarm or "") or {}
    if res.get("Type") != "AWS::CloudWatch::Alarm":
        return None, [f"{fn}: rollback alarm {alarm!r} is not an alarm of the template"]
    p = res.get("Properties") or {}
    dims = {d.get("Name"): d.get("Value") for d in p.get("Dimensions") or []}
    v = []
    if p.get("Namespace") != "AWS/Lambda" or ref_name(dims.get("FunctionName")) != fn:
        v.append(f"{alarm}: not a Lambda metric of {fn}")
    if dims.get("ExecutedVersion") != {"Fn::GetAtt": [fn, "Version.Version"]}:
        v.append(f"{alarm}: does not watch the new version only (ExecutedVersion: !GetAtt {fn}.Version.Version)")
    if [ref_name(a) for a in p.get("AlarmActions") or []] != ["AlarmTopic"]:
        v.append(f"{alarm}: does not notify AlarmTopic")
    return p.get("MetricName"), v


def check_safe_deployments(t: dict[str, Any]) -> list[str]:
    """Every function: the alias `live` (events and routes invoke it), a CodeDeploy deployment
    preference whose type is the DeploymentStrategy parameter, rolled back by alarms on the new
    version's errors and latency; and a reserved-concurrency parameter of its own (0 = unreserved)."""
    v: list[str] = []
    params = t.get("Parameters") or {}
    strategy = params.get("DeploymentStrategy") or {}
    if "AllAtOnce" not in (strategy.get("AllowedValues") or []) or not str(strategy.get("Default", "")).startswith(
        "Canary"
    ):
        v.append("DeploymentStrategy must default to a canary and allow AllAtOnce")
    for fn, res in resources_of(t, "AWS::Serverless::Function").items():
        p = res.get("Properties") or {}
        if p.get("AutoPublishAlias") != "live":
            v.append(f"{fn}: AutoPublishAlias is not 'live' (events must invoke the alias)")
        pref = p.get("DeploymentPreference") or {}
        if pref.get("Type") != {"Ref": "DeploymentStrategy"}:
            v.append(f"{fn}: DeploymentPreference.Type is not the DeploymentStrategy parameter")
        if pref.get("Enabled") not in (None, True):
            v.append(f"{fn}: DeploymentPreference is disabled")
        metrics = set()
        for alarm in pref.get("Alarms") or []:
            metric, problems = _rollback_alarm_violations(t, fn, ref_name(alarm))
            metrics.add(metric)
            v += problems
        if not {"Errors", "Duration"} <= metrics:
            got = sorted(map(str, metrics))
            v.append(f"{fn}: rollback alarms must cover the new version's Errors and Duration (got {got})")
        reserved = p.get("ReservedConcurrentExecutions")
        if not (isinstance(reserved, dict) and "Fn::If" in reserved):
            v.append(f"{fn}: ReservedConcurrentExecutions is not a Fn::If on its own parameter (0 = unreserved)")
            continue
        cond, when_true, when_false = reserved["Fn::If"]
        param = ref_name(when_true)
        spec = params.get(param or "") or {}
        if spec.get("Type") != "Number" or str(spec.get("Default")) != "0" or spec.get("MinValue") != 0:
            v.append(f"{fn}: concurrency parameter {param!r} is not a Number defaulting to 0 (unreserved)")
        if when_false != {"Ref": "AWS::NoValue"}:
            v.append(f"{fn}: concurrency 0 must leave the function unreserved (AWS::NoValue), not throttle it")
        if (t.get("Conditions") or {}).get(cond) != {"Fn::Not": [{"Fn::Equals": [{"Ref": param}, "0"]}]}:
            v.append(f"{fn}: condition {cond} is not 'parameter {param} != 0'")
    return v


def check_encryption(t: dict[str, Any]) -> list[str]:
    """The alarm topic under a key CloudWatch may use; KmsKeyArn (when given) on the functions'
    environment and every log group."""
    v: list[str] = []
    use_kms = {"Fn::If": ["UseKms", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
    key = ref_name(props(t, "AlarmTopic").get("KmsMasterKeyId"))
    if key not in resources_of(t, "AWS::KMS::Key"):
        v.append("AlarmTopic is not encrypted with a customer-managed key of the template")
    else:
        kp = props(t, key)
        principals = [
            (s.get("Principal") or {}).get("Service") for s in (kp.get("KeyPolicy") or {}).get("Statement") or []
        ]
        if "cloudwatch.amazonaws.com" not in principals:
            v.append(f"{key}: CloudWatch alarms may not use the key (notifications would be dropped)")
        if kp.get("EnableKeyRotation") is not True:
            v.append(f"{key}: key rotation is off")
    if ((t.get("Globals") or {}).get("Function") or {}).get("KmsKeyArn") != use_kms:
        v.append("Globals.Function.KmsKeyArn is not the optional KmsKeyArn")
    for group in resources_of(t, "AWS::Logs::LogGroup"):
        if props(t, group).get("KmsKeyId") != use_kms:
            v.append(f"{group}: KmsKeyId is not the optional KmsKeyArn")
    return v


def check_parameters_and_outputs(t: dict[str, Any]) -> list[str]:
    v: list[str] = []
    params = t.get("Parameters") or {}
    for name, default in PARAMETER_DEFAULTS.items():
        if name not in params:
            v.append(f"parameter {name} is missing")
        elif str(params[name].get("Default")) != str(default):
            v.append(f"parameter {name} default {params[name].get('Default')!r} != {default!r}")
    throttling = props(t, "HttpApi").get("DefaultRouteSettings") or {}
    if throttling != {"ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
                      "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"}}:
        v.append("HttpApi.DefaultRouteSettings does not throttle with the ApiThrottling* parameters")
    if (params.get("CorsAllowOrigins") or {}).get("Type") != "CommaDelimitedList":
        v.append("CorsAllowOrigins is not a CommaDelimitedList")
    for name in OUTPUTS:
        if name not in (t.get("Outputs") or {}):
            v.append(f"output {name} is missing")
    return v


def _statements(t: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [s for policy in props(t, role).get("Policies") or []
            for stmt in (policy.get("PolicyDocument") or {}).get("Statement") or [] for s in if_branches(stmt)]


def check_live_updates(t: dict[str, Any]) -> list[str]:
    """DESIGN.md section 9: a WebSocket API whose $connect/$disconnect/$default routes invoke RealtimeFunction's
    `live` alias (the only function API Gateway may invoke for it), and execute-api:ManageConnections on this API's
    @connections only, for exactly the functions that push."""
    v: list[str] = []
    apis = {k: p for k, r in resources_of(t, "AWS::ApiGatewayV2::Api").items()
            if (p := r.get("Properties") or {}).get("ProtocolType") == "WEBSOCKET"}
    if list(apis) != ["WebSocketApi"]:
        return [f"expected one WebSocket API, WebSocketApi (found {sorted(apis)})"]
    if not apis["WebSocketApi"].get("RouteSelectionExpression"):
        v.append("WebSocketApi has no RouteSelectionExpression")
    alias = {"Ref": "RealtimeFunction.Alias"}
    integrations = {k for k, r in resources_of(t, "AWS::ApiGatewayV2::Integration").items()
                    if alias in _walk((r.get("Properties") or {}).get("IntegrationUri"))}
    routes = {(r.get("Properties") or {}).get("RouteKey"): r.get("Properties") or {}
              for r in resources_of(t, "AWS::ApiGatewayV2::Route").values()}
    for key in ("$connect", "$disconnect", "$default"):
        route = routes.get(key)
        if route is None:
            v.append(f"WebSocket route {key} is missing")
        elif ref_name(route.get("ApiId")) != "WebSocketApi" or not any(mentions(route.get("Target"), i)
                                                                      for i in integrations):
            v.append(f"WebSocket route {key} does not target RealtimeFunction's live alias")
    permissions = [r.get("Properties") or {} for r in resources_of(t, "AWS::Lambda::Permission").values()]
    if not any(p.get("FunctionName") == alias and mentions(p.get("SourceArn"), "WebSocketApi") for p in permissions):
        v.append("no permission for WebSocketApi to invoke RealtimeFunction's live alias (SourceArn: this API)")
    for fn, res in resources_of(t, "AWS::Serverless::Function").items():
        role = ref_name((res.get("Properties") or {}).get("Role")) or ""
        pushes = [s for s in _statements(t, role) if "execute-api:ManageConnections" in str(s.get("Action"))]
        if fn in PUSHING_FUNCTIONS and not pushes:
            v.append(f"{fn} may not push to WebSocket connections (execute-api:ManageConnections)")
        if fn not in PUSHING_FUNCTIONS and pushes:
            v.append(f"{fn} may push to WebSocket connections, and should not")
        for s in pushes:
            resource = s.get("Resource")
            if not (mentions(resource, "WebSocketApi") and "@connections" in str(resource)):
                v.append(f"{fn}: ManageConnections is not limited to WebSocketApi's @connections ({resource!r})")
    if "WebSocketUrl" not in (t.get("Outputs") or {}):
        v.append("output WebSocketUrl is missing")
    return v


def _walk(value: Any) -> list[Any]:
    """`value` and everything nested in it."""
    if isinstance(value, dict):
        return [value, *(w for v in value.values() for w in _walk(v))]
    if isinstance(value, list):
        return [w for v in value for w in _walk(v)]
    return [value]


ALL_CHECKS: list[Callable[[dict[str, Any]], list[str]]] = [
    check_routes,
    check_tables,
    check_functions,
    check_log_groups,
    check_stream,
    check_alarms,
    check_least_privilege,
    check_safe_deployments,
    check_encryption,
    check_parameters_and_outputs,
    check_live_updates,
]


# -------------------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def test_given_the_template_when_loaded_then_it_is_a_sam_application(template: dict[str, Any]) -> None:
    assert template.get("Transform") == "AWS::Serverless-2016-10-31"


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_given_the_template_when_checked_then_it_meets_the_contract(
    template: dict[str, Any], check: Callable[[dict[str, Any]], list[str]]
) -> None:
    assert check(template) == []


def test_given_the_routes_when_read_then_every_design_route_and_graphql_exist_with_the_jwt_authorizer(
    template: dict[str, Any],
) -> None:
    default = template["Resources"]["HttpApi"]["Properties"]["Auth"]["DefaultAuthorizer"]
    routes = {
        (p["Method"].upper(), p["Path"]): (p.get("Auth") or {}).get("Authorizer", default)
        for _, _, p in http_api_events(template)
    }
    assert set(routes) == set(PROTECTED_ROUTES) | set(PUBLIC_ROUTES)
    assert {k for k, a in routes.items() if a == "NONE"} == set(PUBLIC_ROUTES)
    assert all(routes[k] == default for k in PROTECTED_ROUTES)


def test_given_the_chat_table_when_read_then_ttl_and_stream_are_on(template: dict[str, Any]) -> None:
    p = props(template, "ChatTable")
    assert p["TimeToLiveSpecification"] == {"AttributeName": "purge_at", "Enabled": True}
    assert p["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


# ------------------------------------------------------------------- the checks can fail (mutations)


def _route_event(t: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    for _, _, p in http_api_events(t):
        if p["Method"].upper() == method and p["Path"] == path:
            return p
    raise AssertionError(f"no route {method} {path}")


def _drop_authorizer(t: dict[str, Any]) -> None:
    _route_event(t, "POST", "/v1/sessions/{session_id}/messages")["Auth"] = {"Authorizer": "NONE"}


def _drop_default_authorizer(t: dict[str, Any]) -> None:
    del t["Resources"]["HttpApi"]["Properties"]["Auth"]["DefaultAuthorizer"]


def _drop_route(t: dict[str, Any]) -> None:
    del t["Resources"]["RestApiFunction"]["Properties"]["Events"]["SearchChannelSessions"]


def _drop_report_batch_item_failures(t: dict[str, Any]) -> None:
    del _event(t, STREAM_FUNCTION, "DynamoDB")["FunctionResponseTypes"]


def _drop_search_throttle_alarm(t: dict[str, Any]) -> None:
    del t["Resources"]["SearchIndexTableThrottlesAlarm"]


def _drop_bisect(t: dict[str, Any]) -> None:
    _event(t, STREAM_FUNCTION, "DynamoDB")["BisectBatchOnFunctionError"] = False


def _unbounded_retries(t: dict[str, Any]) -> None:
    _event(t, STREAM_FUNCTION, "DynamoDB")["MaximumRetryAttempts"] = -1


def _drop_dlq_alarm(t: dict[str, Any]) -> None:
    del t["Resources"]["StreamDlqDepthAlarm"]


def _drop_ttl(t: dict[str, Any]) -> None:
    del props(t, "ChatTable")["TimeToLiveSpecification"]


def _drop_stream(t: dict[str, Any]) -> None:
    del props(t, "ChatTable")["StreamSpecification"]


def _drop_lsi(t: dict[str, Any]) -> None:
    del props(t, "ChatTable")["LocalSecondaryIndexes"]


def _keys_only_gsi1(t: dict[str, Any]) -> None:
    props(t, "ChatTable")["GlobalSecondaryIndexes"][0]["Projection"] = {"ProjectionType": "KEYS_ONLY"}


def _drop_log_group(t: dict[str, Any]) -> None:
    del props(t, STREAM_FUNCTION)["LoggingConfig"]


def _api_writes_search_index(t: dict[str, Any]) -> None:
    props(t, "GraphqlApiToSearchIndexTable")["Permissions"] = ["Read", "Write"]


def _stream_reads_idempotency(t: dict[str, Any]) -> None:
    t["Resources"]["StreamProcessorToIdempotencyTable"] = {
        "Type": "AWS::Serverless::Connector",
        "Properties": {
            "Source": {"Id": STREAM_FUNCTION},
            "Destination": {"Id": "IdempotencyTable"},
            "Permissions": ["Read"],
        },
    }


def _stream_role_names_idempotency(t: dict[str, Any]) -> None:
    stmts = props(t, "StreamProcessorFunctionRole")["Policies"][0]["PolicyDocument"]["Statement"]
    stmts.append(
        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}}
    )


def _wildcard_resource(t: dict[str, Any]) -> None:
    stmts = props(t, "RestApiFunctionRole")["Policies"][0]["PolicyDocument"]["Statement"]
    stmts.append({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})


def _stream_without_alias(t: dict[str, Any]) -> None:
    del props(t, STREAM_FUNCTION)["AutoPublishAlias"]


def _all_at_once_hard_coded(t: dict[str, Any]) -> None:
    props(t, "RestApiFunction")["DeploymentPreference"]["Type"] = "AllAtOnce"


def _rollback_on_the_whole_function(t: dict[str, Any]) -> None:
    dims = props(t, "GraphqlApiFunctionCanaryErrorsAlarm")["Dimensions"]
    dims[:] = [d for d in dims if d["Name"] == "FunctionName"]


def _no_latency_rollback(t: dict[str, Any]) -> None:
    alarms = props(t, STREAM_FUNCTION)["DeploymentPreference"]["Alarms"]
    alarms[:] = [a for a in alarms if a != {"Ref": "StreamProcessorFunctionCanaryLatencyAlarm"}]


def _concurrency_zero_throttles(t: dict[str, Any]) -> None:
    props(t, "RestApiFunction")["ReservedConcurrentExecutions"] = {"Ref": "RestApiReservedConcurrency"}


def _unencrypted_alarm_topic(t: dict[str, Any]) -> None:
    del props(t, "AlarmTopic")["KmsMasterKeyId"]


def _log_group_ignores_kms(t: dict[str, Any]) -> None:
    del props(t, "HttpApiAccessLogGroup")["KmsKeyId"]


def _api_function_pushes(t: dict[str, Any]) -> None:
    stmts = props(t, "GraphqlApiFunctionRole")["Policies"][0]["PolicyDocument"]["Statement"]
    stmts.append({"Effect": "Allow", "Action": "execute-api:ManageConnections",
                  "Resource": {"Fn::Sub": "arn:aws:execute-api:*:*:${WebSocketApi}/*/*/@connections/*"}})


def _push_anywhere(t: dict[str, Any]) -> None:
    for s in props(t, "AgentTurnFunctionRole")["Policies"][0]["PolicyDocument"]["Statement"]:
        if s.get("Sid") == "PushToConnections":
            s["Resource"] = "arn:aws:execute-api:*:*:*"


def _connect_to_the_function_not_the_alias(t: dict[str, Any]) -> None:
    props(t, "RealtimeIntegration")["IntegrationUri"] = {"Fn::GetAtt": ["RealtimeFunction", "Arn"]}


MUTATIONS = [
    (_drop_authorizer, check_routes, "POST /v1/sessions/{session_id}/messages is not behind"),
    (_drop_default_authorizer, check_routes, "no DefaultAuthorizer"),
    (_drop_route, check_routes, "GET /v1/channels/{channel_id}/sessions/search is missing"),
    (_drop_report_batch_item_failures, check_stream, "ReportBatchItemFailures"),
    (_drop_bisect, check_stream, "BisectBatchOnFunctionError"),
    (_unbounded_retries, check_stream, "not bounded"),
    (_drop_dlq_alarm, check_stream, "no alarm on the depth"),
    (_drop_search_throttle_alarm, check_alarms, "no WriteThrottleEvents alarm on SearchIndexTable index by_session"),
    (_drop_ttl, check_tables, "TTL on 'purge_at'"),
    (_drop_stream, check_tables, "stream view type"),
    (_drop_lsi, check_tables, "lsi1 is missing"),
    (_keys_only_gsi1, check_tables, "gsi1 projection"),
    (_drop_log_group, check_log_groups, "StreamProcessorFunction: LoggingConfig.LogGroup"),
    (_api_writes_search_index, check_least_privilege, "GraphqlApiFunction may"),
    (_stream_reads_idempotency, check_least_privilege, "StreamProcessorFunction may"),
    (_stream_role_names_idempotency, check_least_privilege, "StreamProcessorFunction may"),
    (_wildcard_resource, check_least_privilege, "on Resource '*'"),
    (_stream_without_alias, check_safe_deployments, "StreamProcessorFunction: AutoPublishAlias"),
    (_all_at_once_hard_coded, check_safe_deployments, "RestApiFunction: DeploymentPreference.Type"),
    (_rollback_on_the_whole_function, check_safe_deployments, "does not watch the new version only"),
    (_no_latency_rollback, check_safe_deployments, "Errors and Duration"),
    (_concurrency_zero_throttles, check_safe_deployments, "RestApiFunction: ReservedConcurrentExecutions"),
    (_unencrypted_alarm_topic, check_encryption, "AlarmTopic is not encrypted"),
    (_log_group_ignores_kms, check_encryption, "HttpApiAccessLogGroup: KmsKeyId"),
    (_api_function_pushes, check_live_updates, "GraphqlApiFunction may push"),
    (_push_anywhere, check_live_updates, "AgentTurnFunction: ManageConnections is not limited"),
    (_connect_to_the_function_not_the_alias, check_live_updates, "$connect does not target"),
]


@pytest.mark.parametrize(("mutate", "check", "expected"), MUTATIONS, ids=[m[0].__name__ for m in MUTATIONS])
def test_given_a_broken_copy_of_the_template_when_checked_then_the_violation_is_reported(
    template: dict[str, Any],
    mutate: Callable[[dict[str, Any]], None],
    check: Callable[[dict[str, Any]], list[str]],
    expected: str,
) -> None:
    broken = copy.deepcopy(template)
    mutate(broken)
    violations = check(broken)
    assert any(expected in v for v in violations), violations
    assert check(template) == []  # the original is untouched and still passes
