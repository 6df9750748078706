"""The deploy pipeline's contract (issue 21): OIDC only, one GitHub environment per role, least privilege.

pipeline/deploy-role.yaml is linted by cfn-lint (IAM action names included) and scanned by checkov in
`make scan`, the workflows by actionlint; this pins what those tools cannot know: who may assume the role,
that it can do nothing but drive change sets of its one stack, and that the workflows hold no keys and
deploy production only after staging, in the approval-gated environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from chatkeep_local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
ROLE_TEMPLATE = ROOT / "pipeline" / "deploy-role.yaml"
WORKFLOWS = ROOT / ".github" / "workflows"

# Statements allowed on Resource "*": the APIs without resource-level permissions (docs/deploy-pipeline.md).
STAR_RESOURCE_SIDS = {
    "StreamEventSourceMapping",
    "ReadAlarms",
    "LogGroupListingAndAccessLogDelivery",
    "CreateAlarmTopicKey",
}


@pytest.fixture(scope="module")
def role_template() -> dict[str, Any]:
    return load_template(ROLE_TEMPLATE)


def statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    out = []
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for stmt in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in stmt:
                out += [s for s in stmt["Fn::If"][1:] if s != {"Ref": "AWS::NoValue"}]
            else:
                out.append(stmt)
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_given_the_pipeline_role_when_assumed_then_only_its_github_environment_may_do_it(
    role_template: dict[str, Any],
) -> None:
    (trust,) = role_template["Resources"]["PipelineRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert set(trust["Condition"]) == {"StringEquals"}  # no StringLike: no wildcard in the subject
    claims = trust["Condition"]["StringEquals"]
    assert claims["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert claims["token.actions.githubusercontent.com:sub"] == {
        "Fn::Sub": "repo:${GitHubOwner}/${GitHubRepository}:environment:${GitHubEnvironment}"
    }


def test_given_the_pipeline_role_when_read_then_it_can_only_upload_and_drive_change_sets_of_its_stack(
    role_template: dict[str, Any],
) -> None:
    actions = {a for s in statements(role_template, "PipelineRole") for a in as_list(s["Action"])}
    assert {a.split(":")[0] for a in actions} == {"s3", "cloudformation", "iam"}
    assert {a for a in actions if a.startswith("iam:")} == {"iam:PassRole"}
    (pass_role,) = [s for s in statements(role_template, "PipelineRole") if s["Action"] == "iam:PassRole"]
    assert pass_role["Resource"] == {"Fn::GetAtt": ["CloudFormationExecutionRole", "Arn"]}
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}


@pytest.mark.parametrize("role", ["PipelineRole", "CloudFormationExecutionRole"])
def test_given_a_deploy_role_when_read_then_no_wildcard_action_and_star_resources_only_where_unavoidable(
    role_template: dict[str, Any], role: str
) -> None:
    for stmt in statements(role_template, role):
        assert stmt["Effect"] == "Allow"
        assert not any(a == "*" or a.endswith(":*") for a in as_list(stmt["Action"])), stmt["Sid"]
        if "*" in as_list(stmt["Resource"]):
            assert stmt["Sid"] in STAR_RESOURCE_SIDS, stmt["Sid"]


def test_given_the_execution_role_when_read_then_it_cannot_delete_tables_and_attaches_only_known_policies(
    role_template: dict[str, Any],
) -> None:
    stmts = statements(role_template, "CloudFormationExecutionRole")
    actions = {a for s in stmts for a in as_list(s["Action"])}
    assert "dynamodb:DeleteTable" not in actions
    (attach,) = [s for s in stmts if "iam:AttachRolePolicy" in as_list(s["Action"])]
    assert set(attach["Condition"]) == {"ArnLike"}


def _workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_given_the_workflows_when_read_then_they_hold_no_aws_keys() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        assert "aws-access-key-id" not in text and "aws-secret-access-key" not in text, path.name
        assert "AWS_SECRET_ACCESS_KEY" not in text, path.name


def test_given_a_pull_request_when_its_workflow_runs_then_it_is_make_test_without_credentials() -> None:
    wf = _workflow("pull-request.yml")
    assert wf["permissions"] == {"contents": "read"}
    (job,) = wf["jobs"].values()
    assert any(step.get("run") == "make test" for step in job["steps"])


def test_given_main_when_the_deploy_workflow_runs_then_production_follows_staging_behind_its_environment() -> None:
    jobs = _workflow("deploy.yml")["jobs"]
    assert jobs["build"]["needs"] == "test"
    assert jobs["deploy-staging"]["needs"] == "build" and jobs["deploy-staging"]["environment"] == "staging"
    assert jobs["deploy-production"]["needs"] == "deploy-staging"
    assert jobs["deploy-production"]["environment"] == "production"
    for name in ("deploy-staging", "deploy-production"):
        job = jobs[name]
        assert job["permissions"]["id-token"] == "write"
        uses = [s.get("uses", "") for s in job["steps"]]
        assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses)
        deploy = next(s["run"] for s in job["steps"] if "sam deploy" in s.get("run", ""))
        assert "--role-arn" in deploy and "--no-confirm-changeset" in deploy
