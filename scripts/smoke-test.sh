#!/usr/bin/env bash
# After a deploy: the stack's public OpenAPI document answers 200 through the API and the REST
# function's live alias (no token needed). Usage: scripts/smoke-test.sh <stack-name>
set -euo pipefail
stack="${1:?usage: scripts/smoke-test.sh <stack-name>}"
api_url="$(aws cloudformation describe-stacks --stack-name "$stack" \
  --query "Stacks[0].Outputs[?OutputKey=='ApiUrl'].OutputValue" --output text)"
if [ -z "$api_url" ] || [ "$api_url" = "None" ]; then
  echo "error: stack $stack has no ApiUrl output" >&2
  exit 1
fi
status="$(curl --silent --show-error --output /dev/null --write-out '%{http_code}' --max-time 30 "$api_url/openapi.json")"
echo "GET $api_url/openapi.json -> $status"
[ "$status" = "200" ]
