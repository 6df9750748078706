"""Reading template.yaml: a CloudFormation-aware YAML loader and the few views the local runtime needs.

`load_template(path)` turns short tags (`!Ref X`, `!Sub ...`, `!GetAtt A.B`, ...) into their long form
(`{"Ref": "X"}`, `{"Fn::Sub": ...}`, `{"Fn::GetAtt": ["A", "B"]}`), so the result is plain data.
The helpers below derive, from that data, what SAM/CloudFormation would create: the tables (as boto3
`create_table` kwargs), the functions (with their resolved environment), the HTTP API routes and their
authorizers, and the stream event source of the stream function.

Local physical names: a resource's physical name is its logical id (`!Ref ChatTable` -> `ChatTable`);
a queue's is its QueueName if it declares one, and `!Ref Queue` is its URL, as in CloudFormation.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "chatkeep-local"

_NO_VALUE = object()  # AWS::NoValue: the property is dropped


class UnresolvableError(ValueError):
    """An intrinsic the local runtime cannot evaluate (Fn::ImportValue, Fn::Cidr, unknown names...)."""


# --------------------------------------------------------------------------------------------- loader

_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "Sub": "Fn::Sub",
    "GetAtt": "Fn::GetAtt",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Select": "Fn::Select",
    "Join": "Fn::Join",
    "Split": "Fn::Split",
    "FindInMap": "Fn::FindInMap",
    "ImportValue": "Fn::ImportValue",
    "Base64": "Fn::Base64",
    "Cidr": "Fn::Cidr",
    "GetAZs": "Fn::GetAZs",
    "Transform": "Fn::Transform",
    "Length": "Fn::Length",
    "ToJsonString": "Fn::ToJsonString",
}


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader + CloudFormation short tags. Timestamps stay strings ('2010-09-09')."""


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _short_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    name = _SHORT_TAGS.get(tag_suffix)
    if name is None:
        raise yaml.constructor.ConstructorError(None, None, f"unknown tag !{tag_suffix}", node.start_mark)
    value = _construct_node(loader, node)
    if name == "Fn::GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _short_tag)
_CfnLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def load_template(path: str | Path) -> dict[str, Any]:
    """Load a SAM/CloudFormation template (YAML or JSON) with short tags in their long form."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a template (top level is not a mapping)")
    data.setdefault("Resources", {})
    # Remember where it came from: CodeUri/ContentUri are relative to the template's folder.
    data["__path__"] = str(path.resolve())
    return data


def template_dir(template: Mapping[str, Any]) -> Path:
    p = template.get("__path__")
    return Path(p).parent if p else Path.cwd()


# ----------------------------------------------------------------------------------------- parameters


def parameters(template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Parameter values: their Default, overridden by `overrides`. CommaDelimitedList values are lists."""
    values: dict[str, Any] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        spec = spec or {}
        value = (overrides or {}).get(name, spec.get("Default"))
        if value is None:
            continue
        ptype = str(spec.get("Type", "String"))
        if ptype == "CommaDelimitedList" or ptype.startswith("List<"):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",")] if value != "" else []
        elif ptype == "Number":
            value = str(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        else:
            value = str(value)
        values[name] = value
    for name, value in (overrides or {}).items():
        values.setdefault(name, value)
    return values


def resources(template: Mapping[str, Any], rtype: str | None = None) -> dict[str, dict[str, Any]]:
    out = {}
    for logical_id, res in (template.get("Resources") or {}).items():
        if isinstance(res, dict) and (rtype is None or res.get("Type") == rtype):
            out[logical_id] = res
    return out


# ------------------------------------------------------------------------------------------ intrinsics


class Resolver:
    """Evaluates the intrinsics that appear in properties the local runtime reads.

    Ref to a parameter -> its value; Ref to a resource -> its local physical name (the logical id);
    pseudo parameters -> local values; Fn::GetAtt X.Arn/StreamArn -> a local ARN; Fn::If on the
    template's Conditions; Fn::Sub/Join/Select/Split/FindInMap/Base64/GetAZs. Anything else raises
    UnresolvableError."""

    def __init__(self, template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None):
        self.template = template
        self.params = parameters(template, overrides)
        self.resources = template.get("Resources") or {}
        self.conditions = template.get("Conditions") or {}
        self._cond_cache: dict[str, bool] = {}

    # -- names
    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
            "AWS::NotificationARNs": [],
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in self.resources:
            if self.resources[name].get("Type") == "AWS::SQS::Queue":
                return queue_url(self.queue_name(name))  # a queue's Ref is its URL
            return name
        function, _, suffix = name.partition(".")
        if suffix == "Alias" and self.resources.get(function, {}).get("Type") == "AWS::Serverless::Function":
            # SAM: `!Ref Fn.Alias` is the AutoPublishAlias alias (its Ref: the function ARN qualified by it)
            alias = (self.resources[function].get("Properties") or {}).get("AutoPublishAlias")
            if alias:
                return f"{function_arn(function)}:{self.resolve(alias)}"
        raise UnresolvableError(f"Ref {name}: no such parameter or resource")

    def queue_name(self, logical_id: str) -> str:
        """A queue's physical name: its QueueName, else its logical id (`.fifo` added for a FIFO queue)."""
        props = self.resources[logical_id].get("Properties") or {}
        if props.get("QueueName") is not None:
            return str(self.resolve(props["QueueName"]))
        fifo = str(self.resolve(props.get("FifoQueue", False))).lower() == "true"
        return f"{logical_id}.fifo" if fifo else logical_id

    def get_att(self, resource: str, attribute: str) -> str:
        res = self.resources.get(resource)
        if res is None:
            raise UnresolvableError(f"GetAtt {resource}.{attribute}: no such resource")
        rtype = res.get("Type", "")
        if rtype == "AWS::DynamoDB::Table":
            if attribute == "Arn":
                return table_arn(resource)
            if attribute == "StreamArn":
                return f"{table_arn(resource)}/stream/local"
        if rtype == "AWS::SQS::Queue":
            if attribute == "Arn":
                return queue_arn(self.queue_name(resource))
            if attribute == "QueueName":
                return self.queue_name(resource)
            if attribute == "QueueUrl":
                return queue_url(self.queue_name(resource))
        if rtype in ("AWS::Serverless::Function", "AWS::Lambda::Function") and attribute == "Arn":
            return function_arn(resource)
        if attribute == "Arn":
            service = rtype.split("::")[1].lower() if "::" in rtype else "local"
            return f"arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{resource}"
        raise UnresolvableError(f"GetAtt {resource}.{attribute}: not known locally")

    # -- conditions
    def condition(self, name: str) -> bool:
        if name not in self._cond_cache:
            if name not in self.conditions:
                raise UnresolvableError(f"Condition {name}: not declared")
            self._cond_cache[name] = bool(self.resolve(self.conditions[name]))
        return self._cond_cache[name]

    # -- evaluation
    def resolve(self, value: Any) -> Any:
        """Evaluate every intrinsic inside `value`; AWS::NoValue removes the key/item."""
        out = self._resolve(value)
        return None if out is _NO_VALUE else out

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(self._resolve(arg))
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._fn(key, arg)
        out = {}
        for k, v in value.items():
            r = self._resolve(v)
            if r is not _NO_VALUE:
                out[k] = r
        return out

    def _fn(self, key: str, arg: Any) -> Any:
        if key == "Fn::If":
            cond, when_true, when_false = arg
            return self._resolve(when_true if self.condition(cond) else when_false)
        if key == "Fn::Equals":
            a, b = (self._resolve(x) for x in arg)
            return str(a) == str(b)
        if key == "Fn::Not":
            return not self._truth(arg[0])
        if key == "Fn::And":
            return all(self._truth(x) for x in arg)
        if key == "Fn::Or":
            return any(self._truth(x) for x in arg)
        if key == "Fn::GetAtt":
            if isinstance(arg, str):
                arg = arg.split(".", 1)
            resource, attribute = (self._resolve(x) for x in arg)
            return self.get_att(resource, attribute)
        if key == "Fn::Sub":
            return self._sub(arg)
        if key == "Fn::Join":
            delimiter, items = arg
            items = self._resolve(items)
            return str(delimiter).join(str(i) for i in items)
        if key == "Fn::Select":
            index, items = arg
            items = self._resolve(items)
            return items[int(self._resolve(index))]
        if key == "Fn::Split":
            delimiter, source = arg
            return str(self._resolve(source)).split(delimiter)
        if key == "Fn::FindInMap":
            name, k1, k2 = (self._resolve(x) for x in arg)
            try:
                return self.template["Mappings"][name][k1][k2]
            except KeyError as exc:
                raise UnresolvableError(f"FindInMap {name}/{k1}/{k2}: not found") from exc
        if key == "Fn::Base64":
            return base64.b64encode(str(self._resolve(arg)).encode()).decode()
        if key == "Fn::GetAZs":
            return [f"{REGION}{z}" for z in "abc"]
        if key == "Fn::ToJsonString":
            import json

            return json.dumps(self._resolve(arg), separators=(",", ":"))
        if key == "Fn::Length":
            return len(self._resolve(arg))
        raise UnresolvableError(f"{key} is not evaluated locally")

    def _truth(self, value: Any) -> bool:
        if isinstance(value, dict) and set(value) == {"Condition"}:
            return self.condition(value["Condition"])
        return bool(self._resolve(value))

    _SUB_RE = re.compile(r"\$\{([^}]*)\}")

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self._resolve(v) for k, v in (arg[1] or {}).items()}
        else:
            text, variables = arg, {}

        def replace(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return str(self.get_att(resource, attribute))
            value = self.ref(name)
            if value is _NO_VALUE:
                return ""
            return ",".join(value) if isinstance(value, list) else str(value)

        return self._SUB_RE.sub(replace, text)


def table_arn(table_name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{table_name}"


def function_arn(function_name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"


def queue_arn(queue_name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_name}"


def queue_url(queue_name: str) -> str:
    """The URL SQS gives the queue (what `!Ref Queue` returns). The local SQS (moto) finds a queue by
    the URL's last segment, so this URL works against it too, with the client's endpoint_url."""
    return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{queue_name}"


# -------------------------------------------------------------------------------------------- tables


@dataclass
class TableSpec:
    logical_id: str
    create_kwargs: dict[str, Any]  # boto3 dynamodb.create_table(**create_kwargs) (TableName = logical id)
    ttl_attribute: str | None = None
    stream_view_type: str | None = None


def _strip_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _index(spec: Mapping[str, Any], provisioned: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "IndexName": spec["IndexName"],
        "KeySchema": copy.deepcopy(spec["KeySchema"]),
        "Projection": copy.deepcopy(spec.get("Projection") or {"ProjectionType": "ALL"}),
    }
    if provisioned and spec.get("ProvisionedThroughput"):
        out["ProvisionedThroughput"] = _throughput(spec["ProvisionedThroughput"])
    return out


def _throughput(spec: Mapping[str, Any]) -> dict[str, int]:
    return {
        "ReadCapacityUnits": int(spec["ReadCapacityUnits"]),
        "WriteCapacityUnits": int(spec["WriteCapacityUnits"]),
    }


def tables(template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, TableSpec]:
    """Every AWS::DynamoDB::Table of the template, as boto3 create_table kwargs + TTL attribute name.

    Derived from the declared properties (keys, attribute definitions, GSIs, LSIs, stream, billing);
    PITR, SSE, tags and deletion protection have no local meaning and are left out."""
    resolver = Resolver(template, overrides)
    out: dict[str, TableSpec] = {}
    for logical_id, res in resources(template, "AWS::DynamoDB::Table").items():
        props = resolver.resolve(res.get("Properties") or {})
        billing = props.get("BillingMode", "PROVISIONED")
        provisioned = billing == "PROVISIONED"
        kwargs: dict[str, Any] = {
            "TableName": logical_id,
            "KeySchema": copy.deepcopy(props["KeySchema"]),
            "AttributeDefinitions": copy.deepcopy(props["AttributeDefinitions"]),
            "BillingMode": billing,
        }
        if provisioned:
            kwargs["ProvisionedThroughput"] = _throughput(
                props.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = [
                _index(g, provisioned) for g in props["GlobalSecondaryIndexes"]
            ]
        if props.get("LocalSecondaryIndexes"):
            kwargs["LocalSecondaryIndexes"] = [_index(i, False) for i in props["LocalSecondaryIndexes"]]
        view = (props.get("StreamSpecification") or {}).get("StreamViewType")
        if view:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
        ttl = props.get("TimeToLiveSpecification") or {}
        ttl_attr = ttl.get("AttributeName") if str(ttl.get("Enabled", True)).lower() == "true" else None
        out[logical_id] = TableSpec(logical_id, kwargs, ttl_attr, view)
    return out


def create_tables(
    client: Any,
    template: Mapping[str, Any],
    names: Iterable[str] | Mapping[str, str] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    enable_ttl: bool = True,
) -> dict[str, str]:
    """Create the template's tables with `client` (a boto3 DynamoDB client, e.g. under moto).

    `names`: None = every table; an iterable of logical ids = only those; a mapping
    {logical id: table name} = those, under other physical names. TTL is enabled on the declared
    attribute. Existing tables are left as they are. Returns {logical id: table name}."""
    specs = tables(template, overrides)
    if names is None:
        wanted = {lid: lid for lid in specs}
    elif isinstance(names, Mapping):
        wanted = dict(names)
    else:
        wanted = {lid: lid for lid in names}
    unknown = set(wanted) - set(specs)
    if unknown:
        raise KeyError(f"not tables of the template: {sorted(unknown)}")
    created: dict[str, str] = {}
    for lid, table_name in wanted.items():
        spec = specs[lid]
        kwargs = dict(spec.create_kwargs, TableName=table_name)
        try:
            client.create_table(**kwargs)
        except client.exceptions.ResourceInUseException:
            created[lid] = table_name
            continue
        if spec.ttl_attribute and enable_ttl:
            client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
        created[lid] = table_name
    return created


# ------------------------------------------------------------------------------------------ functions


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    runtime: str | None
    timeout: int
    memory_size: int
    environment: dict[str, str]
    unresolved_env: dict[str, str] = field(default_factory=dict)  # name -> why
    layers: list[Path] = field(default_factory=list)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    function_name: str | None = None
    # ReservedConcurrentExecutions where it resolves to a number (None: unreserved, or AWS::NoValue)
    reserved_concurrency: int | None = None

    @property
    def module_file(self) -> Path:
        return self.code_uri / (self.handler.rsplit(".", 1)[0].replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    @property
    def arn(self) -> str:
        return function_arn(self.function_name or self.logical_id)


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def functions(
    template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function with Globals.Function merged in and Environment resolved."""
    resolver = Resolver(template, overrides)
    base = template_dir(template)
    glob = (template.get("Globals") or {}).get("Function") or {}
    layer_paths = {
        lid: base / str(resolver.resolve((res.get("Properties") or {}).get("ContentUri", "")))
        for lid, res in resources(template, "AWS::Serverless::LayerVersion").items()
    }
    out: dict[str, FunctionSpec] = {}
    for lid, res in resources(template, "AWS::Serverless::Function").items():
        props = res.get("Properties") or {}
        env_raw = dict(((glob.get("Environment") or {}).get("Variables")) or {})
        env_raw.update(((props.get("Environment") or {}).get("Variables")) or {})
        env: dict[str, str] = {}
        unresolved: dict[str, str] = {}
        for name, raw in env_raw.items():
            try:
                value = resolver._resolve(raw)
            except (UnresolvableError, KeyError, IndexError, TypeError, ValueError) as exc:
                unresolved[name] = str(exc)
                continue
            if value is _NO_VALUE:
                continue
            env[name] = _env_value(value)

        def prop(name: str, default: Any = None, props: Mapping[str, Any] = props) -> Any:
            if name in props:
                return resolver.resolve(props[name])
            if name in glob:
                return resolver.resolve(glob[name])
            return default

        layers: list[Path] = []
        for layer in prop("Layers", []) or []:
            if isinstance(layer, str) and layer in layer_paths:
                layers.append(layer_paths[layer])
        fname = props.get("FunctionName")
        try:
            fname = resolver.resolve(fname) if fname is not None else None
        except UnresolvableError:
            fname = None
        out[lid] = FunctionSpec(
            logical_id=lid,
            code_uri=(base / str(prop("CodeUri", "."))).resolve(),
            handler=str(prop("Handler", "app.lambda_handler")),
            runtime=prop("Runtime"),
            timeout=int(prop("Timeout", 3)),
            memory_size=int(prop("MemorySize", 128)),
            environment=env,
            unresolved_env=unresolved,
            layers=layers,
            events=dict(props.get("Events") or {}),
            function_name=str(fname) if fname else None,
            reserved_concurrency=_reserved_concurrency(prop),
        )
    return out


def _reserved_concurrency(prop: Any) -> int | None:
    """ReservedConcurrentExecutions (the function's, else Globals') as a number; None when unset, AWS::NoValue or
    not resolvable locally. `prop` reads a resolved property (functions())."""
    try:
        value = prop("ReservedConcurrentExecutions")
        return None if value in (None, "") else int(value)
    except (UnresolvableError, KeyError, IndexError, TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------- routes


@dataclass
class JwtAuthorizer:
    name: str
    issuer: str | None
    audiences: list[str]
    identity_header: str = "authorization"


@dataclass
class Route:
    method: str  # upper case; "ANY" for any method
    path: str  # "/v1/sessions/{session_id}", or "$default"
    function: str  # logical id
    auth: str  # "jwt" | "none"
    api_id: str = "ServerlessHttpApi"
    authorizer: JwtAuthorizer | None = None
    scopes: list[str] = field(default_factory=list)  # AuthorizationScopes of the route
    payload_format: str = "2.0"
    timeout_ms: int = 30000

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


def _ci_get(d: Mapping[str, Any], key: str, default: Any = None) -> Any:
    for k, v in d.items():
        if k.lower() == key.lower():
            return v
    return default


def http_apis(template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, dict]:
    """Resolved properties of each AWS::Serverless::HttpApi (Globals.HttpApi merged), plus the implicit
    `ServerlessHttpApi` SAM creates for HttpApi events without ApiId."""
    resolver = Resolver(template, overrides)
    glob = (template.get("Globals") or {}).get("HttpApi") or {}
    apis = {lid: res.get("Properties") or {} for lid, res in resources(template, "AWS::Serverless::HttpApi").items()}
    apis.setdefault("ServerlessHttpApi", {})
    out = {}
    for lid, props in apis.items():
        merged = copy.deepcopy(glob)
        merged.update(props)
        out[lid] = resolver.resolve(merged)
    return out


def _authorizers(api: Mapping[str, Any]) -> dict[str, JwtAuthorizer | None]:
    auth = api.get("Auth") or {}
    out: dict[str, JwtAuthorizer | None] = {}
    for name, spec in (auth.get("Authorizers") or {}).items():
        jwt_conf = spec.get("JwtConfiguration")
        if jwt_conf is None:
            out[name] = None  # a Lambda authorizer: not emulated
            continue
        audience = _ci_get(jwt_conf, "audience", []) or []
        if isinstance(audience, str):
            audience = [audience]
        source = str(spec.get("IdentitySource") or "$request.header.Authorization")
        header = source.split(".")[-1].lower() if source.startswith("$request.header.") else "authorization"
        out[name] = JwtAuthorizer(name, _ci_get(jwt_conf, "issuer"), [str(a) for a in audience], header)
    return out


def routes(template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> list[Route]:
    """The HTTP API routes declared by the functions' HttpApi events, in declaration order."""
    resolver = Resolver(template, overrides)
    apis = http_apis(template, overrides)
    out: list[Route] = []
    for lid, res in resources(template, "AWS::Serverless::Function").items():
        for event in ((res.get("Properties") or {}).get("Events") or {}).values():
            if not isinstance(event, dict) or event.get("Type") != "HttpApi":
                continue
            props = resolver.resolve(event.get("Properties") or {})
            api_id = props.get("ApiId") or "ServerlessHttpApi"
            api = apis.get(api_id, {})
            authorizers = _authorizers(api)
            ev_auth = props.get("Auth") or {}
            auth_name = ev_auth.get("Authorizer") or (api.get("Auth") or {}).get("DefaultAuthorizer")
            authorizer = None
            if auth_name and auth_name != "NONE":
                authorizer = authorizers.get(auth_name)
            path = props.get("Path") or "$default"
            method = str(props.get("Method") or "ANY").upper()
            if path == "$default":
                method = "ANY"
            out.append(
                Route(
                    method=method,
                    path=path,
                    function=lid,
                    auth="jwt" if authorizer else "none",
                    api_id=api_id,
                    authorizer=authorizer,
                    scopes=list(ev_auth.get("AuthorizationScopes") or []),
                    payload_format=str(props.get("PayloadFormatVersion") or "2.0"),
                    timeout_ms=int(props.get("TimeoutInMillis") or 30000),
                )
            )
    return out


def cors_configuration(
    template: Mapping[str, Any], api_id: str = "ServerlessHttpApi", overrides: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The API's CorsConfiguration (resolved), or None. `True` means SAM's allow-all default."""
    apis = http_apis(template, overrides)
    api = apis.get(api_id)
    if api is None and apis:
        api = next(iter(apis.values()))
    cors = (api or {}).get("CorsConfiguration")
    if cors is True:
        return {"AllowOrigins": ["*"], "AllowHeaders": ["*"], "AllowMethods": ["*"]}
    return cors or None


def api_id_for(logical_id: str) -> str:
    """A stable 10-character API id, shaped like API Gateway's."""
    return hashlib.sha1(logical_id.encode()).hexdigest()[:10]  # noqa: S324 - not security


# --------------------------------------------------------------------------------------------- streams


@dataclass
class StreamSource:
    function: str  # logical id of the consumer
    table: str  # logical id of the table whose stream it reads
    batch_size: int = 100
    max_batching_window_s: float = 0.0
    starting_position: str = "TRIM_HORIZON"
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    max_retry_attempts: int = -1  # -1 = until the record expires (AWS default)
    max_record_age_s: int = -1
    on_failure: str | None = None
    enabled: bool = True


def _stream_table(stream: Any) -> str | None:
    if isinstance(stream, dict):
        att = stream.get("Fn::GetAtt")
        if att:
            return att[0] if isinstance(att, list) else str(att).split(".")[0]
        return None
    m = re.search(r":table/([^/]+)/stream/", str(stream or ""))
    return m.group(1) if m else None


def stream_sources(template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> list[StreamSource]:
    """The DynamoDB stream event sources declared on functions (Type: DynamoDB events)."""
    resolver = Resolver(template, overrides)
    out = []
    for lid, res in resources(template, "AWS::Serverless::Function").items():
        for event in ((res.get("Properties") or {}).get("Events") or {}).values():
            if not isinstance(event, dict) or event.get("Type") != "DynamoDB":
                continue
            raw = event.get("Properties") or {}
            table = _stream_table(raw.get("Stream"))
            if table is None:
                continue
            props = resolver.resolve({k: v for k, v in raw.items() if k != "Stream"})
            dest = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            out.append(
                StreamSource(
                    function=lid,
                    table=table,
                    batch_size=int(props.get("BatchSize", 100)),
                    max_batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                    starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in (props.get("FunctionResponseTypes") or []),
                    bisect_on_error=str(props.get("BisectBatchOnFunctionError", False)).lower() == "true",
                    max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                    max_record_age_s=int(props.get("MaximumRecordAgeInSeconds", -1)),
                    on_failure=str(dest) if dest else None,
                    enabled=str(props.get("Enabled", True)).lower() != "false",
                )
            )
    return out


def stream_source(template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> StreamSource | None:
    """The (first) stream event source, e.g. StreamProcessorFunction on ChatTable's stream."""
    sources = stream_sources(template, overrides)
    return sources[0] if sources else None


# ------------------------------------------------------------------------------------- token defaults


def jwt_defaults(template: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """issuer, audience and workspace claim that a local token should carry for this template, deployed
    with `overrides` (`chatkeep dev --parameter`, as `sam deploy --parameter-overrides` would be)."""
    issuer, audience, claim = "chatkeep-local", "chatkeep", "workspace_id"
    if template:
        params = parameters(template, overrides)
        auths = [r.authorizer for r in routes(template, overrides) if r.authorizer]
        if auths:
            issuer = auths[0].issuer or issuer
            audience = auths[0].audiences[0] if auths[0].audiences else audience
        else:
            issuer = params.get("JwtIssuer", issuer)
            aud = params.get("JwtAudience", audience)
            audience = aud[0] if isinstance(aud, list) and aud else aud
        claim = params.get("WorkspaceClaim", claim) or claim
    return {"issuer": str(issuer), "audience": str(audience), "workspace_claim": str(claim)}
