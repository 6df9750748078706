"""The local Bedrock stand-in, driven as the worker drives Bedrock: the real boto3 `bedrock-runtime` client calling
`converse_stream` over HTTP on a loopback port, so botocore's serialization, event-stream parsing and error
mapping are what is under test (see chatkeep_local/bedrock_standin.py and docs/local-model.md)."""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import EventStreamError, ReadTimeoutError
from chatkeep_local import eventstream
from chatkeep_local.bedrock_standin import StandInConfig, StandInModel
from chatkeep_local.bedrock_standin_config import (
    MSG_ALTERNATE,
    MSG_FIRST_USER,
    MSG_INVALID_MODEL,
    MSG_TOO_LONG,
    http_error_status,
    stream_exception_types,
)
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeout

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
NO_RETRIES = Config(retries={"total_max_attempts": 1})  # botocore retries throttling by default


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"text": text}]}


@pytest.fixture
def model() -> StandInModel:
    return StandInModel(StandInConfig(chunk_delay_s=0))


@pytest.fixture
def server(model: StandInModel):
    with model.serve("127.0.0.1", 0) as srv:
        yield srv


def make_client(server: Any, config: Config = NO_RETRIES) -> Any:
    return boto3.client(
        "bedrock-runtime", endpoint_url=server.endpoint_url, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing", config=config,
    )


@pytest.fixture
def client(server: Any) -> Any:
    return make_client(server)


def converse(client: Any, messages: list[dict[str, Any]], model_id: str = MODEL, **kwargs: Any) -> list[dict]:
    response = client.converse_stream(modelId=model_id, messages=messages, **kwargs)
    return list(response["stream"])


def text_of(events: list[dict]) -> str:
    return "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)


def http(server: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method=method,  # noqa: S310 - loopback test server
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


# --------------------------------------------------------------------------------------------- streaming
def test_given_a_conversation_when_streamed_then_the_events_have_converse_streams_shapes(client):
    response = client.converse_stream(modelId=MODEL, messages=[user("hello there")])
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    events = list(response["stream"])

    kinds = [next(iter(e)) for e in events]
    deltas = kinds.count("contentBlockDelta")
    assert kinds == ["messageStart", *["contentBlockDelta"] * deltas, "contentBlockStop", "messageStop", "metadata"]
    assert 5 <= deltas <= 8
    assert events[0] == {"messageStart": {"role": "assistant"}}
    assert all(set(e["contentBlockDelta"]) == {"delta", "contentBlockIndex"} for e in events[1:1 + deltas])
    assert all(e["contentBlockDelta"]["contentBlockIndex"] == 0 for e in events[1:1 + deltas])
    assert events[-3] == {"contentBlockStop": {"contentBlockIndex": 0}}
    assert events[-2] == {"messageStop": {"stopReason": "end_turn"}}
    metadata = events[-1]["metadata"]
    assert set(metadata) == {"usage", "metrics"}
    assert set(metadata["usage"]) == {"inputTokens", "outputTokens", "totalTokens"}
    assert isinstance(metadata["metrics"]["latencyMs"], int) and metadata["metrics"]["latencyMs"] >= 0


def test_given_a_history_when_answered_then_the_reply_shows_what_was_sent_and_is_deterministic(client):
    messages = [user("first question"), assistant("first answer"), user("second   question\nplease")]
    kwargs = {"system": [{"text": "You are terse."}], "inferenceConfig": {"temperature": 0.2}}

    first = text_of(converse(client, messages, **kwargs))
    second = text_of(converse(client, messages, **kwargs))

    assert first == second
    assert first == ('Stand-in reply to 3 messages (system: yes, temperature: 0.2). '
                     'You said: "second question please".')
    assert "(system: no, temperature: default)" in text_of(converse(client, [user("hi")]))


def test_given_long_last_words_when_answered_then_the_reply_quotes_them_truncated(client):
    reply = text_of(converse(client, [user("word " * 100)]))
    quoted = reply.split('You said: "', 1)[1].rsplit('".', 1)[0]
    assert len(quoted) == 80 and quoted.endswith("…")


def test_given_a_request_when_answered_then_usage_is_ceil_of_characters_over_four(client):
    system, texts = "Be brief.", ["one", "two two", "three three three"]
    events = converse(client, [user(texts[0]), assistant(texts[1]), user(texts[2])], system=[{"text": system}])

    usage = events[-1]["metadata"]["usage"]
    assert usage["inputTokens"] == sum(math.ceil(len(t) / 4) for t in [system, *texts])
    assert usage["outputTokens"] == math.ceil(len(text_of(events)) / 4)
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]


def test_given_max_tokens_below_the_reply_when_streamed_then_it_is_cut_and_stops_with_max_tokens(client):
    full = text_of(converse(client, [user("tell me everything")]))

    events = converse(client, [user("tell me everything")], inferenceConfig={"maxTokens": 5})

    assert text_of(events) == full[:20]
    assert events[-2] == {"messageStop": {"stopReason": "max_tokens"}}
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 5


def test_given_a_stop_sequence_in_the_reply_when_streamed_then_it_stops_before_it(client):
    events = converse(client, [user("hi")], inferenceConfig={"stopSequences": ["You said"]})

    assert text_of(events) == "Stand-in reply to 1 message (system: no, temperature: default). "
    assert events[-2] == {"messageStop": {"stopReason": "stop_sequence"}}


def test_given_the_chunk_count_changed_over_http_when_streamed_then_the_reply_comes_in_that_many_deltas(
        client, server):
    assert http(server, "POST", "/_local/model/config", {"chunks": 3})[1]["chunks"] == 3
    events = converse(client, [user("hi")])
    assert sum("contentBlockDelta" in e for e in events) == 3
    assert http(server, "POST", "/_local/model/config", {"chunks": 0})[0] == 400
    assert http(server, "POST", "/_local/model/config", {"allowed_model_ids": 7})[0] == 400
    assert http(server, "POST", "/_local/model/config", {"chunk_size": 7})[0] == 400


def test_given_sixteen_concurrent_requests_when_streamed_then_every_one_completes(server):
    client = make_client(server)
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda i: text_of(converse(client, [user(f"turn {i}")])), range(16)))
    assert [r.endswith(f'"turn {i}".') for i, r in enumerate(replies)] == [True] * 16


# ------------------------------------------------------------------------------------------- recording
def test_given_requests_when_read_then_each_is_recorded_with_its_model_id_body_and_time(client, model):
    before = time.time()
    params = {
        "system": [{"text": "sys"}],
        "inferenceConfig": {"temperature": 0.5, "maxTokens": 300},
        "requestMetadata": {"workspace": "ws1", "session": "42"},
    }
    converse(client, [user("hi")], model_id=PROFILE_ARN, **params)

    [record] = model.requests()
    assert record["model_id"] == PROFILE_ARN  # URL-decoded from the path botocore built
    assert record["body"] == {"messages": [user("hi")], **params}
    assert before <= record["received_at"] <= time.time()
    assert record["outcome"] == "end_turn" and record["fault"] is None


def test_given_recorded_requests_when_read_over_http_then_clear_empties_them(client, server):
    converse(client, [user("one")])
    converse(client, [user("two")])

    status, records = http(server, "GET", "/_local/model/requests?clear=1")
    assert status == 200
    assert [r["body"]["messages"][0]["content"][0]["text"] for r in records] == ["one", "two"]
    assert http(server, "GET", "/_local/model/requests")[1] == []
    converse(client, [user("three")])
    assert http(server, "DELETE", "/_local/model/requests")[1] == {"cleared": 1}


# ------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([assistant("hello")], MSG_FIRST_USER),
        ([], MSG_FIRST_USER),
        ([user("a"), user("b")], MSG_ALTERNATE),
        ([user("a"), assistant("b"), assistant("c")], MSG_ALTERNATE),
        ([user("a"), {"role": "assistant", "content": []}, user("c")],
         "The content field in the Message object at messages.1 is empty. "
         "Add a ContentBlock object to the content field and try again."),
        ([user("a"), assistant("b"), {"role": "user", "content": [{"text": "ok"}, {"text": "  "}]}],
         "The text field in the ContentBlock object at messages.2.content.1 is blank. "
         "Add text to the text field, and try again."),
    ],
    ids=["assistant-first", "empty", "two-users", "two-assistants", "empty-content", "blank-text"],
)
def test_given_messages_bedrock_rejects_when_sent_then_validation_exception_with_bedrocks_words(
        client, messages, message):
    with pytest.raises(client.exceptions.ValidationException) as err:
        client.converse_stream(modelId=MODEL, messages=messages)
    assert err.value.response["Error"]["Message"] == message
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("inference", "message"),
    [
        ({"temperature": 1.5}, "1 validation error detected: Value '1.5' at 'inferenceConfig.temperature' failed "
                               "to satisfy constraint: Member must have value less than or equal to 1"),
        ({"temperature": 1.0, "topP": 2.0}, "1 validation error detected: Value '2.0' at 'inferenceConfig.topP' "
                                            "failed to satisfy constraint: Member must have value less than or "
                                            "equal to 1"),
        ({"maxTokens": 8193}, "The maximum tokens you requested exceeds the model limit of 8192. "
                              "Try again with a maximum tokens value that is lower than 8192."),
    ],
    ids=["temperature", "topP", "maxTokens"],
)
def test_given_inference_config_out_of_bounds_when_sent_then_validation_exception(client, inference, message):
    with pytest.raises(client.exceptions.ValidationException) as err:
        client.converse_stream(modelId=MODEL, messages=[user("hi")], inferenceConfig=inference)
    assert err.value.response["Error"]["Message"] == message


def test_given_a_small_context_window_when_the_input_exceeds_it_then_input_is_too_long(client, model):
    model.config.context_window_tokens = 10
    converse(client, [user("x" * 40)])  # 10 tokens: fits
    with pytest.raises(client.exceptions.ValidationException) as err:
        converse(client, [user("x" * 40)], system=[{"text": "y"}])
    assert err.value.response["Error"]["Message"] == MSG_TOO_LONG


def test_given_an_allow_list_when_a_model_is_not_on_it_then_the_identifier_is_invalid(client, model):
    model.config.allowed_model_ids = ("us.anthropic.claude-3-haiku-20240307-v1:0",)
    converse(client, [user("hi")], model_id="us.anthropic.claude-3-haiku-20240307-v1:0")
    converse(client, [user("hi")], model_id=PROFILE_ARN)  # an ARN matches on its resource id
    with pytest.raises(client.exceptions.ValidationException) as err:
        converse(client, [user("hi")], model_id="amazon.nova-pro-v1:0")
    assert err.value.response["Error"]["Message"] == MSG_INVALID_MODEL


def test_given_environment_variables_when_configured_from_env_then_they_apply():
    config = StandInConfig.from_env({
        "CHATKEEP_LOCAL_MODEL_CHUNK_DELAY": "0.01", "CHATKEEP_LOCAL_MODEL_CHUNKS": "4",
        "CHATKEEP_LOCAL_MODEL_IDS": "a.b-v1:0, c.d-v2:0", "CHATKEEP_LOCAL_MODEL_CONTEXT_TOKENS": "1000",
        "CHATKEEP_LOCAL_MODEL_MAX_TOKENS": "4096",
    })
    assert config.to_dict() == {"chunk_delay_s": 0.01, "chunks": 4, "allowed_model_ids": ["a.b-v1:0", "c.d-v2:0"],
                                "context_window_tokens": 1000, "max_output_tokens": 4096}
    assert StandInConfig.from_env({}) == StandInConfig()


# ---------------------------------------------------------------------------------------------- faults
@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ({"kind": "throttle"}, "ThrottlingException", 429),
        ({"kind": "access_denied"}, "AccessDeniedException", 403),
        ({"kind": "error", "error": "ModelErrorException"}, "ModelErrorException", 424),
        ({"kind": "error", "error": "InternalServerException"}, "InternalServerException", 500),
        ({"kind": "error", "error": "ServiceUnavailableException"}, "ServiceUnavailableException", 503),
        ({"kind": "error", "error": "ModelTimeoutException"}, "ModelTimeoutException", 408),
        ({"kind": "error", "error": "ModelNotReadyException"}, "ModelNotReadyException", 429),
        ({"kind": "error", "error": "ResourceNotFoundException"}, "ResourceNotFoundException", 404),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_given_an_http_fault_when_called_then_botocore_raises_the_modeled_exception(
        client, model, fault, error, status):
    model.add_fault(fault)

    with pytest.raises(getattr(client.exceptions, error)) as err:
        client.converse_stream(modelId=MODEL, messages=[user("hi")])

    assert err.value.response["Error"]["Code"] == error
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert model.requests()[-1]["outcome"] == error
    converse(client, [user("hi")])  # count 1: the next request is answered


def test_every_converse_stream_error_shape_has_a_status_and_a_default_message():
    from chatkeep_local.bedrock_standin_config import DEFAULT_MESSAGES

    assert set(http_error_status()) <= set(DEFAULT_MESSAGES)
    assert set(stream_exception_types()) <= set(DEFAULT_MESSAGES)


def test_given_throttle_twice_when_called_three_times_then_two_throttle_and_the_third_streams(client, server):
    status, body = http(server, "POST", "/_local/model/faults", {"kind": "throttle", "count": 2, "message": "slow"})
    assert status == 200 and body["pending"] == [{"kind": "throttle", "count": 2, "message": "slow"}]

    for _ in range(2):
        with pytest.raises(client.exceptions.ThrottlingException, match="slow"):
            client.converse_stream(modelId=MODEL, messages=[user("hi")])
    assert text_of(converse(client, [user("hi")]))
    assert http(server, "GET", "/_local/model/faults")[1] == []


def test_given_faults_for_one_model_or_until_cleared_then_they_apply_in_order_to_matching_requests(client, model):
    model.add_fault({"kind": "access_denied", "model_id": "amazon.nova-pro-v1:0", "count": None})
    model.add_fault({"kind": "throttle"})

    with pytest.raises(client.exceptions.ThrottlingException):  # the first fault is for another model
        converse(client, [user("hi")])
    for _ in range(2):
        with pytest.raises(client.exceptions.AccessDeniedException):
            converse(client, [user("hi")], model_id="amazon.nova-pro-v1:0")
    assert model.clear_faults() == 1
    converse(client, [user("hi")], model_id="amazon.nova-pro-v1:0")


@pytest.mark.parametrize("exception_type", stream_exception_types())
def test_given_a_break_fault_when_streaming_then_deltas_then_the_in_stream_exception(client, model, exception_type):
    model.add_fault({"kind": "break", "after_deltas": 2, "exception": exception_type})
    received: list[dict] = []

    with pytest.raises(EventStreamError) as err:
        for event in client.converse_stream(modelId=MODEL, messages=[user("hi")])["stream"]:
            received.append(event)

    assert err.value.response["Error"]["Code"] == exception_type
    assert [next(iter(e)) for e in received] == ["messageStart", "contentBlockDelta", "contentBlockDelta"]
    assert model.requests()[-1]["outcome"] == f"break:{exception_type}"


def test_given_a_drop_fault_when_streaming_then_the_connection_is_cut_after_the_deltas(client, model):
    model.add_fault({"kind": "drop", "after_deltas": 1})
    received: list[dict] = []

    with pytest.raises(ProtocolError):  # botocore does not wrap it: urllib3's, from the stream iterator
        for event in client.converse_stream(modelId=MODEL, messages=[user("hi")])["stream"]:
            received.append(event)

    assert [next(iter(e)) for e in received] == ["messageStart", "contentBlockDelta"]
    assert model.requests()[-1]["outcome"] == "drop"
    converse(client, [user("hi")])  # the next request gets a new connection


def test_given_a_short_stall_mid_stream_then_the_stream_resumes_and_completes(client, model):
    model.add_fault({"kind": "stall", "seconds": 0.05, "after_deltas": 3})
    events = converse(client, [user("hi")])
    assert events[-2] == {"messageStop": {"stopReason": "end_turn"}}
    assert model.requests()[-1]["fault"] == {"kind": "stall", "seconds": 0.05, "after_deltas": 3}


def test_given_a_long_stall_before_the_response_when_the_client_times_out_then_read_timeout(server, model):
    model.add_fault({"kind": "stall", "seconds": 60})
    impatient = make_client(server, Config(retries={"total_max_attempts": 1}, read_timeout=0.3))

    with pytest.raises(ReadTimeoutError):
        impatient.converse_stream(modelId=MODEL, messages=[user("hi")])
    model.clear_faults()


def test_given_a_long_stall_mid_stream_when_the_client_times_out_then_read_timeout(server, model):
    model.add_fault({"kind": "stall", "seconds": 60, "after_deltas": 1})
    impatient = make_client(server, Config(retries={"total_max_attempts": 1}, read_timeout=0.3))
    stream = impatient.converse_stream(modelId=MODEL, messages=[user("hi")])["stream"]

    with pytest.raises(Urllib3ReadTimeout):  # mid-stream: urllib3's, not wrapped by botocore
        list(stream)
    model.clear_faults()


def test_given_a_stalled_call_when_the_faults_are_cleared_then_it_is_answered_at_once(client, server, model):
    model.add_fault({"kind": "stall", "seconds": 600})
    result: list[list[dict]] = []
    caller = threading.Thread(target=lambda: result.append(converse(client, [user("hi")])))
    caller.start()
    wait_until(lambda: len(model.requests()) == 1)

    assert http(server, "DELETE", "/_local/model/faults")[1] == {"cleared": 0}  # taken, yet its stall is released
    caller.join(timeout=10)

    assert not caller.is_alive()
    assert result[0][-2] == {"messageStop": {"stopReason": "end_turn"}}


def test_given_the_client_closes_the_stream_early_then_the_outcome_is_client_disconnected(client, model):
    model.add_fault({"kind": "stall", "seconds": 600, "after_deltas": 1})
    stream = client.converse_stream(modelId=MODEL, messages=[user("hi")])["stream"]
    iterator = iter(stream)
    assert "messageStart" in next(iterator) and "contentBlockDelta" in next(iterator)

    stream.close()  # what a worker does when its turn is cancelled
    model.clear_faults()

    wait_until(lambda: model.requests()[-1]["outcome"] == "client_disconnected")


@pytest.mark.parametrize(
    ("fault", "complaint"),
    [
        ({"kind": "explode"}, "fault kind must be one of"),
        ({"kind": "throttle", "cuont": 2}, "unknown fault field(s): cuont"),
        ({"kind": "error", "error": "TeapotException"}, "error must be one of"),
        ({"kind": "break", "exception": "ThrottlingException"}, "exception must be one of"),
        ({"kind": "stall"}, "seconds must be a number"),
        ({"kind": "throttle", "count": 0}, "count must be a number >= 1"),
    ],
)
def test_given_a_bad_fault_when_posted_then_400_says_what_is_wrong(server, model, fault, complaint):
    status, body = http(server, "POST", "/_local/model/faults", fault)
    assert status == 400 and complaint in body["message"]
    assert model.faults() == []


def test_given_a_list_of_faults_when_posted_then_all_are_queued_or_none_if_one_is_bad(server, model):
    status, body = http(server, "POST", "/_local/model/faults",
                        [{"kind": "throttle"}, {"kind": "slow", "chunk_delay_s": 0, "count": None}])
    assert status == 200
    assert body["pending"] == [{"kind": "throttle", "count": 1}, {"kind": "slow", "chunk_delay_s": 0, "count": None}]

    assert http(server, "POST", "/_local/model/faults", [{"kind": "throttle"}, {"kind": "bad"}])[0] == 400
    assert len(model.faults()) == 2


# ----------------------------------------------------------------------------------------- wire details
def test_given_an_unknown_operation_when_called_then_404_unknown_operation(client):
    with pytest.raises(client.exceptions.ClientError) as err:
        client.converse(modelId=MODEL, messages=[user("hi")])
    assert err.value.response["Error"]["Code"] == "UnknownOperationException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_given_an_event_when_encoded_then_botocores_decoder_reads_it_back_with_valid_crcs():
    buffer = EventStreamBuffer()  # validates the prelude and message CRCs
    buffer.add_data(eventstream.event("contentBlockDelta", {"delta": {"text": "héllo ✓"}, "contentBlockIndex": 0})
                    + eventstream.exception("throttlingException", {"message": "slow down"}))
    first, second = list(buffer)

    assert first.headers == {":event-type": "contentBlockDelta", ":content-type": "application/json",
                             ":message-type": "event"}
    assert json.loads(first.payload) == {"delta": {"text": "héllo ✓"}, "contentBlockIndex": 0}
    assert second.headers[":message-type"] == "exception"
    assert second.headers[":exception-type"] == "throttlingException"


def test_given_the_moto_mock_when_active_then_the_stand_in_is_still_reached(server):
    from moto import mock_aws

    with mock_aws():  # the integration tests run the worker under moto: its calls must pass through
        events = converse(make_client(server), [user("through moto")])
    assert text_of(events).endswith('"through moto".')
