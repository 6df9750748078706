"""Print the CloudFormation that the SAM transform makes of template.yaml, offline (tooling, run with
.venv-tools/bin/python: aws-sam-translator ships with aws-sam-cli).

    .venv-tools/bin/python scripts/sam_translate.py [template.yaml] [Name=Value ...] > transformed.json

CodeUri/ContentUri become placeholder S3 URIs (as `sam validate` does) and the two AWS managed
policies SAM may attach are given by name, so nothing calls AWS. Parameter values override defaults,
which is how CloudFormation runs the transform (DeploymentPreference.Type is resolved this way).
"""

from __future__ import annotations

import json
import os
import sys
from unittest import mock

from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/service-role/{name}"
    for name in ("AWSCodeDeployRoleForLambda", "AWSCodeDeployRoleForLambdaLimited")
}


def main(argv: list[str]) -> int:
    path = argv[0] if argv and "=" not in argv[0] else "template.yaml"
    params = dict(a.split("=", 1) for a in argv if "=" in a)
    with open(path, encoding="utf-8") as fh:
        template = yaml_parse(fh.read())
    for resource in template.get("Resources", {}).values():
        for key in ("CodeUri", "ContentUri"):
            if key in (resource.get("Properties") or {}):
                resource["Properties"][key] = "s3://placeholder-bucket/placeholder.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    loader = mock.Mock(spec=ManagedPolicyLoader)
    loader.load.return_value = MANAGED_POLICIES
    json.dump(transform(template, params, loader), sys.stdout, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
