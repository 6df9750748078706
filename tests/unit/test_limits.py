import pytest
from chatkeep import limits
from chatkeep.errors import BadInput, PayloadTooLarge


def test_given_valid_flat_metadata_then_accepted():
    md = {"ticket": "T-1", "n": 3, "ok": True, "none": None, "f": 1.5}
    assert limits.check_metadata(md) == md


@pytest.mark.parametrize(("metadata", "needle"), [
    ({f"k{i}": i for i in range(51)}, "51 keys; the limit is 50"),
    ({"k" * 65: 1}, "the limit is 64"),
    ({"k": "v" * 513}, "the limit is 512"),
    ({"k": {"nested": 1}}, "flat"),
    ({"k": [1]}, "flat"),
    ([1, 2], "flat JSON object"),
])
def test_given_metadata_over_a_limit_then_bad_input_naming_the_limit(metadata, needle):
    with pytest.raises(BadInput) as err:
        limits.check_metadata(metadata)
    assert needle in err.value.message


def test_given_metadata_over_8kb_then_payload_too_large():
    with pytest.raises(PayloadTooLarge) as err:
        limits.check_metadata({f"k{i}": "v" * 500 for i in range(20)})
    assert "8192" in err.value.message


def test_given_content_over_32kb_then_payload_too_large_and_empty_is_bad_input():
    with pytest.raises(PayloadTooLarge):
        limits.check_content("é" * 20000)
    with pytest.raises(BadInput):
        limits.check_content("   ")


def test_given_title_and_timeouts_and_temperature_then_bounds_enforced():
    assert limits.check_title("t" * 200)
    with pytest.raises(BadInput):
        limits.check_title("t" * 201)
    with pytest.raises(BadInput):
        limits.check_idle_timeout(59)
    assert limits.check_idle_timeout(60) == 60
    with pytest.raises(BadInput):
        limits.check_temperature(2.1)
    with pytest.raises(BadInput):
        limits.check_limit(101, 20)
