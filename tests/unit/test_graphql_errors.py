"""chatkeep.graphql.errors.format_error: the one map from failures to extensions.code."""

from __future__ import annotations

from chatkeep.errors import BadInput, NotFound, SessionClosed, SessionExpired
from chatkeep.graphql.errors import MASKED, format_error
from graphql import GraphQLError


def located(original: Exception | None, path: list | None = None) -> GraphQLError:
    return GraphQLError(str(original) if original else "plain", path=path, original_error=original)


def test_given_domain_errors_then_their_code_and_message():
    for error, code in [(NotFound("session not found"), "NOT_FOUND"), (BadInput("bad"), "BAD_USER_INPUT"),
                        (SessionExpired("expired"), "SESSION_EXPIRED"), (SessionClosed("closed"), "SESSION_CLOSED")]:
        formatted = format_error(located(error, ["field"]))
        assert formatted["extensions"] == {"code": code}
        assert formatted["message"] == error.message


def test_given_an_unexpected_exception_then_masked_without_detail():
    formatted = format_error(located(ValueError("db password is hunter2"), ["getTodoChatSessions"]))
    assert formatted["message"] == MASKED
    assert formatted["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "hunter2" not in str(formatted)


def test_given_debug_then_the_exception_type_is_added_but_never_a_stack():
    formatted = format_error(located(ValueError("detail"), ["f"]), debug=True)
    assert formatted["extensions"]["exception"] == {"type": "ValueError", "message": "detail"}
    assert "Traceback" not in str(formatted)


def test_given_a_variable_that_does_not_coerce_then_bad_user_input_with_its_message():
    """graphql-core 3.3 wraps variable coercion failures: a GraphQLError whose original_error is a GraphQLError,
    with no path (a request error). It is the client's input, not a server fault."""
    inner = GraphQLError("Int cannot represent non 32-bit signed integer value: 99999999999")
    outer = GraphQLError("Variable '$ids' has invalid value at [0]: " + inner.message, original_error=inner)
    formatted = format_error(outer)
    assert formatted["extensions"] == {"code": "BAD_USER_INPUT"}
    assert "99999999999" in formatted["message"]


def test_given_a_serialisation_failure_inside_execution_then_still_masked():
    """A GraphQLError raised while completing a field (it has a path) is a server bug: masked."""
    inner = GraphQLError("Int cannot represent non-integer value: 'x'")
    outer = GraphQLError(inner.message, path=["getOneTodoChatSession", "messageCount"], original_error=inner)
    formatted = format_error(outer)
    assert formatted["extensions"] == {"code": "INTERNAL_SERVER_ERROR"} and formatted["message"] == MASKED


def test_given_a_coded_validation_error_then_its_code_is_kept():
    error = GraphQLError("Cannot query field 'nope'.", extensions={"code": "GRAPHQL_VALIDATION_FAILED"})
    assert format_error(error)["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}


def test_given_an_uncoded_error_without_original_then_bad_user_input():
    assert format_error(GraphQLError("Must provide operation name"))["extensions"] == {"code": "BAD_USER_INPUT"}
