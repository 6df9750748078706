"""Safe deployments as CloudFormation will run them (issue 21): the SAM transform's output, not the source.

tests/unit/test_template.py checks what template.yaml says; this checks what SAM makes of it, with the
translator of .venv-tools (scripts/sam_translate.py, offline): every route and the stream's event source
mapping invoke the alias `live`, every alias is shifted by a CodeDeploy deployment group that rolls back
on its alarms, and DeploymentStrategy picks the deployment configuration (canary by default, AllAtOnce
when a stage asks for it). Skips without .venv-tools, except under CI.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from chatkeep_local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TOOLS_PY = ROOT / ".venv-tools" / "bin" / "python"
FUNCTIONS = ("GraphqlApiFunction", "RestApiFunction", "StreamProcessorFunction", "AgentTurnFunction",
             "RealtimeFunction")


def translate(*parameters: str) -> dict[str, Any]:
    if not TOOLS_PY.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{TOOLS_PY} is missing: `make install` builds .venv-tools")
        pytest.skip(f"{TOOLS_PY} is missing: run `make install` to check the SAM transform")
    proc = subprocess.run(
        [str(TOOLS_PY), "scripts/sam_translate.py", "template.yaml", *parameters],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)["Resources"]


def of_type(resources: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in resources.items() if v["Type"] == rtype}


def alias_of(resources: dict[str, Any], fn: str) -> str:
    (alias,) = [
        lid
        for lid, r in of_type(resources, "AWS::Lambda::Alias").items()
        if r["Properties"]["FunctionName"] == {"Ref": fn}
    ]
    return alias


@pytest.fixture(scope="module")
def canary() -> dict[str, Any]:
    return translate()


def test_given_the_transform_when_read_then_every_route_invokes_an_alias(canary: dict[str, Any]) -> None:
    body = canary["HttpApi"]["Properties"]["Body"]
    uris = [
        op["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        for methods in body["paths"].values()
        for op in methods.values()
        if "x-amazon-apigateway-integration" in op
    ]
    from chatkeep_local.template import load_template, routes

    assert len(uris) == len(routes(load_template(ROOT / "template.yaml")))  # every declared route
    aliases = {alias_of(canary, fn) for fn in ("GraphqlApiFunction", "RestApiFunction")}
    assert {uri.split("${")[-1].split("}")[0] for uri in uris} == aliases
    permissions = of_type(canary, "AWS::Lambda::Permission").values()
    assert {p["Properties"]["FunctionName"]["Ref"] for p in permissions} == aliases | {
        alias_of(canary, "RealtimeFunction")}


def test_given_the_transform_when_read_then_the_websocket_routes_invoke_the_realtime_alias(
        canary: dict[str, Any]) -> None:
    alias = alias_of(canary, "RealtimeFunction")
    (integration,) = of_type(canary, "AWS::ApiGatewayV2::Integration").values()
    assert {"Ref": alias} in integration["Properties"]["IntegrationUri"]["Fn::Join"][1]
    routes = {r["Properties"]["RouteKey"] for r in of_type(canary, "AWS::ApiGatewayV2::Route").values()}
    assert routes == {"$connect", "$disconnect", "$default"}
    (permission,) = [p["Properties"] for p in of_type(canary, "AWS::Lambda::Permission").values()
                     if p["Properties"]["FunctionName"] == {"Ref": alias}]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert "${WebSocketApi}" in permission["SourceArn"]["Fn::Sub"]


def test_given_the_transform_when_read_then_every_event_source_mapping_invokes_an_alias(
        canary: dict[str, Any]) -> None:
    targets = {json.dumps(m["Properties"]["FunctionName"], sort_keys=True)
               for m in of_type(canary, "AWS::Lambda::EventSourceMapping").values()}
    assert targets == {json.dumps({"Ref": alias_of(canary, fn)}) for fn in ("StreamProcessorFunction",
                                                                             "AgentTurnFunction")}


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_given_the_default_strategy_when_transformed_then_each_alias_is_a_canary_rolled_back_by_its_alarms(
    canary: dict[str, Any], fn: str
) -> None:
    update = canary[alias_of(canary, fn)]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    group = canary[update["DeploymentGroupName"]["Ref"]]["Properties"]
    assert group["DeploymentConfigName"] == {
        "Fn::Sub": ["CodeDeployDefault.Lambda${ConfigName}", {"ConfigName": "Canary10Percent5Minutes"}]
    }
    assert group["AutoRollbackConfiguration"]["Enabled"] is True
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
    alarms = {a["Name"]["Ref"] for a in group["AlarmConfiguration"]["Alarms"]}
    assert alarms == {f"{fn}CanaryErrorsAlarm", f"{fn}CanaryLatencyAlarm"}
    for alarm in alarms:
        dims = {d["Name"]: d["Value"] for d in canary[alarm]["Properties"]["Dimensions"]}
        version = dims["ExecutedVersion"]["Fn::GetAtt"]
        assert canary[version[0]]["Type"] == "AWS::Lambda::Version" and version[1] == "Version"


def test_given_a_development_stage_when_transformed_with_all_at_once_then_every_group_switches_at_once() -> None:
    resources = translate("DeploymentStrategy=AllAtOnce")
    groups = of_type(resources, "AWS::CodeDeploy::DeploymentGroup").values()
    configs = [g["Properties"]["DeploymentConfigName"]["Fn::Sub"][1]["ConfigName"] for g in groups]
    assert configs == ["AllAtOnce"] * len(FUNCTIONS)


def _overrides(env: dict[str, Any]) -> dict[str, str]:
    text = env["deploy"]["parameters"]["parameter_overrides"]
    return dict(pair.split("=", 1) for pair in shlex.split(text))


def test_given_samconfig_when_read_then_dev_switches_at_once_and_staging_and_prod_are_canaries() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    template = load_template(ROOT / "template.yaml")
    strategies = {env: _overrides(config[env]).get("DeploymentStrategy") for env in ("dev", "staging", "prod")}
    assert strategies == {"dev": "AllAtOnce", "staging": "Canary10Percent5Minutes", "prod": "Canary10Percent5Minutes"}
    allowed = template["Parameters"]["DeploymentStrategy"]["AllowedValues"]
    for env in ("default", "dev", "staging", "prod"):
        # --parameter-overrides replaces the whole list, so a misspelt name would silently fall back to a default
        assert set(_overrides(config[env])) <= set(template["Parameters"]), env
        assert _overrides(config[env]).get("DeploymentStrategy", "Canary10Percent5Minutes") in allowed
