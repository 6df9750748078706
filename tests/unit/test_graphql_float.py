"""GraphQL Float output: graphql-core's coercion, then whole numbers as JSON integers (as JavaScript servers
print them). What Float refuses, it still refuses."""

from __future__ import annotations

import json
import math

import pytest
from chatkeep.graphql.resolvers import serialize_float
from graphql import GraphQLError


@pytest.mark.parametrize("value, printed", [
    (1553259272, "1553259272"), (1553259272.0, "1553259272"), (2**31 - 1, "2147483647"), (0.0, "0"), (-0.0, "0"),
    (-3.0, "-3"), (1.5, "1.5"), (0.7, "0.7"), (True, "1"), (1e21, "1e+21"),
])
def test_given_a_float_field_value_when_serialized_then_json_prints_it_like_javascript(value, printed):
    assert json.dumps(serialize_float(value)) == printed


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "abc", [1], {"a": 1}, None])
def test_given_a_value_float_refuses_then_still_a_graphql_error(value):
    with pytest.raises(GraphQLError):
        serialize_float(value)
