"""`chatkeep dev` serves the Bedrock stand-in on its main port: Bedrock Runtime paths under /_local/bedrock (the
functions find it through BEDROCK_ENDPOINT_URL), the control API under /_local/model/."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from chatkeep_local.testing import LocalApiProcess, write_sample_app

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sample_api(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample-app-model")
    api = LocalApiProcess(write_sample_app(root), log_path=root / "dev.log", extra_args=["--no-stream"],
                          env={"CHATKEEP_LOCAL_MODEL_CHUNK_DELAY": "0"})
    api.start()
    try:
        yield api
    finally:
        api.stop()


def test_given_chatkeep_dev_when_a_function_calls_bedrock_runtime_then_the_stand_in_answers_and_records_it(
        sample_api):
    sample_api.request("DELETE", "/_local/model/requests")
    token = sample_api.token("u1", "ws1")

    resp = sample_api.request("GET", "/v1/files/model", token=token)

    assert resp.status_code == 200, resp.text
    assert resp.json()["text"] == ('Stand-in reply to 1 message (system: no, temperature: default). '
                                   'You said: "from a function".')
    [record] = sample_api.request("GET", "/_local/model/requests").json()
    assert record["model_id"] == "local.sample-v1:0" and record["outcome"] == "end_turn"
    assert sample_api.health()["model"] == f"{sample_api.base_url}/_local/bedrock"


def test_given_chatkeep_dev_when_a_fault_is_posted_on_the_main_port_then_boto3_sees_it(sample_api):
    client = boto3.client("bedrock-runtime", endpoint_url=f"{sample_api.base_url}/_local/bedrock",
                          region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"total_max_attempts": 1}))
    posted = sample_api.request("POST", "/_local/model/faults", json={"kind": "throttle"})
    assert posted.status_code == 200, posted.text

    with pytest.raises(client.exceptions.ThrottlingException):
        client.converse_stream(modelId="local.sample-v1:0", messages=[{"role": "user", "content": [{"text": "x"}]}])
    assert sample_api.request("GET", "/_local/model/faults").json() == []
    assert sample_api.request("DELETE", "/_local/model/faults").json() == {"cleared": 0}
