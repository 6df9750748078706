import pytest
from chatkeep import ids
from chatkeep.errors import BadInput


def test_given_an_id_when_encoded_then_prefixed_lowercase_crockford_and_decodes_back():
    for number in (1, 31, 32, 1337, 2**31 - 1):
        text = ids.encode(ids.Kind.SESSION, number)
        assert text.startswith("ses_") and text == text.lower()
        assert ids.decode(ids.Kind.SESSION, text) == number


def test_given_known_value_when_encoded_then_matches_crockford_alphabet():
    assert ids.encode(ids.Kind.SESSION, 12345) == "ses_c1s"


def test_given_lookalike_letters_when_decoded_then_forgiven_like_crockford():
    assert ids.decode(ids.Kind.CHANNEL, "ch_O1") == ids.decode(ids.Kind.CHANNEL, "ch_01")
    assert ids.decode(ids.Kind.CHANNEL, "CH_I") == 1


@pytest.mark.parametrize("bad", ["ses_", "ch_1", "ses_u", "ses_zzzzzzzz", "0", "ses_!!", "", "-5"])
def test_given_malformed_or_out_of_range_when_decoded_then_bad_input(bad):
    with pytest.raises(BadInput):
        ids.decode(ids.Kind.SESSION, bad)


def test_given_new_ids_then_in_graphql_int_range_and_not_sequential():
    drawn = {ids.new_id() for _ in range(1000)}
    assert len(drawn) == 1000
    assert all(0 < n <= 2**31 - 1 for n in drawn)


@pytest.mark.parametrize("bad", [1.5, 0, -1, 2**31, True])
def test_given_graphql_float_id_not_whole_or_out_of_range_then_bad_input(bad):
    with pytest.raises(BadInput):
        ids.check_number(bad)
