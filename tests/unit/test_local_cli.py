"""The small `chatkeep` commands: `chatkeep id` converts between an id's REST and GraphQL forms, and
`chatkeep token` refuses a lifetime that would make a dead token."""

from __future__ import annotations

import pytest
from chatkeep import ids
from chatkeep_local.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse refusals
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_given_a_rest_id_when_converted_then_the_graphql_number(capsys):
    assert run(capsys, "id", "ses_c1s") == (0, "12345\n", "")
    assert run(capsys, "id", "CH_C1S") == (0, "12345\n", "")  # Crockford reads any case


def test_given_a_number_and_a_kind_when_converted_then_the_rest_id_that_decodes_back(capsys):
    code, out, _ = run(capsys, "id", "12345", "--kind", "session")
    assert (code, out) == (0, "ses_c1s\n")
    assert ids.decode(ids.Kind.SESSION, out.strip()) == 12345
    assert run(capsys, "id", "12345", "--kind", "ch")[1] == "ch_c1s\n"


def test_given_a_number_without_a_kind_then_every_kind_is_listed(capsys):
    code, out, _ = run(capsys, "id", "12345")
    assert code == 0
    assert out.split() == ["session", "ses_c1s", "channel", "ch_c1s", "agent", "agt_c1s", "message", "msg_c1s",
                           "turn", "trn_c1s"]


@pytest.mark.parametrize("argv, says", [
    (["id", "ch_c1s", "--kind", "session"], "is a channel id, not a session id"),
    (["id", "ses_!!"], "malformed session id"),
    (["id", "0"], "out of range"),
    (["id", str(2**31)], "out of range"),
    (["id", "c1s"], "neither a number nor a prefixed id"),
    (["id", "5", "--kind", "thread"], "unknown kind 'thread'"),
])
def test_given_a_bad_id_or_kind_then_exit_2_and_one_line_that_says_why(capsys, argv, says):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert says in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("ttl", ["-5", "0", "soon"])
def test_given_a_lifetime_that_is_not_positive_when_asking_a_token_then_refused(capsys, ttl):
    code, out, err = run(capsys, "token", "--sub", "ada", "--workspace", "w1", "--ttl", ttl)
    assert code == 2 and out == ""
    assert "--ttl" in err


def test_given_a_positive_lifetime_then_a_token_that_lives_that_long(capsys):
    import jwt

    code, out, _ = run(capsys, "token", "--sub", "ada", "--workspace", "w1", "--ttl", "120")
    claims = jwt.decode(out.strip(), options={"verify_signature": False})
    assert code == 0 and claims["exp"] - claims["iat"] == 120
