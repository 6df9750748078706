import pytest
from chatkeep.graphql import guards
from chatkeep.repository.codec import from_item, to_item
from graphql import parse


def test_given_python_values_when_round_tripped_then_equal_and_big_ints_exact():
    values = {"s": "x", "i": 2**53 + 1, "f": 0.25, "b": False, "m": {"a": [1, "b", None]}, "e": ""}
    assert from_item(to_item(values)) == values


def test_given_none_attribute_when_stored_then_absent():
    assert "gone" not in to_item({"gone": None, "kept": 1})


def test_given_guide_details_query_then_within_bounds():
    doc = parse("query($s: Float!){ getOneTodoChatSession(sessionId: $s){ id title messages { id message "
                "createdAt sentBy { id firstName } isBotReply } } }")
    assert guards.check_document(doc, max_depth=10, max_cost=5000) == []


def test_given_fragment_bomb_then_refused_without_expanding():
    fragments = ["fragment F0 on TodoChatSession { id title }"]
    for i in range(1, 40):
        fragments.append(f"fragment F{i} on TodoChatSession {{ ...F{i - 1} ...F{i - 1} }}")
    doc = parse("query { getOneTodoChatSession(sessionId: 1) { ...F39 } } " + " ".join(fragments))
    errors = guards.check_document(doc, max_depth=10, max_cost=5000)
    assert errors and "cost" in errors[0].message


def test_given_cyclic_fragments_then_refused():
    doc = parse("query { getOneTodoChatSession(sessionId: 1) { ...A } } "
                "fragment A on TodoChatSession { ...B } fragment B on TodoChatSession { ...A }")
    assert guards.check_document(doc, max_depth=10, max_cost=5000)


def test_given_deep_query_then_depth_refused():
    inner = "id"
    for _ in range(12):
        inner = f"sentBy {{ {inner} }}"
    errors = guards.check_document(parse(f"{{ a {{ {inner} }} }}"), max_depth=10, max_cost=10**9)
    assert errors and "levels deep" in errors[0].message


@pytest.mark.parametrize("text,value", [("0", 0), ("-12", -12), ("2147483647", 2147483647), ("1.5", 1.5),
                                        ("-0.25", -0.25), ("1E+2", 100.0), ("1.0", 1.0)])
def test_given_a_dynamodb_number_when_decoded_then_integers_are_int_and_the_rest_float(text: str,
                                                                                       value: float) -> None:
    decoded = from_item({"n": {"N": text}, "m": {"M": {"s": {"S": ""}, "l": {"L": [{"N": text}]}}}})
    assert decoded == {"n": value, "m": {"s": "", "l": [value]}}
    assert type(decoded["n"]) is type(value)


def test_given_the_standard_introspection_query_then_within_bounds():
    """What GraphiQL, Apollo and codegen send (15 levels deep) passes the guards; the introspection rule still
    decides whether the deployment answers it."""
    from graphql import get_introspection_query

    query = get_introspection_query(descriptions=True, specified_by_url=True, directive_is_repeatable=True,
                                    schema_description=True, input_value_deprecation=True)
    assert guards.check_document(parse(query), max_depth=10, max_cost=5000) == []


@pytest.mark.parametrize("query, says", [
    ("{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }", "nests 4 lists"),
    ("{ __type(name: \"Query\") { fields { type { " + "ofType { " * 20 + "name" + " }" * 20 + " } } } }",
     "levels deep; the limit is 20"),
    ("fragment F on __Type { fields { type { fields { type { fields { name } } } } } }"
     " { __schema { types { ...F } } }",
     "nests 4 lists"),
])
def test_given_introspection_that_multiplies_or_nests_too_far_then_refused(query, says):
    errors = guards.check_document(parse(query), max_depth=10, max_cost=5000)
    assert errors and says in errors[0].message, errors
