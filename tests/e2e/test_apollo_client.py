"""The guide's client code, unchanged, on Apollo Client 4 (Node) against `chatkeep dev`: tests/e2e/apollo/
guide_client.mjs runs the guide's flow and prints what it saw as one JSON line; apq_client.mjs drives Apollo's
PersistedQueryLink. Skipped, with the reason, when node or the npm packages are missing
(`make install` runs `npm ci --prefix tests/e2e/apollo` when node exists)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
APOLLO = Path(__file__).resolve().parent / "apollo"
NODE = shutil.which("node")


def require_node() -> str:
    if NODE is None:
        pytest.skip("node is not installed: the Apollo Client e2e needs Node.js >= 20")
    if not (APOLLO / "node_modules" / "@apollo" / "client").is_dir():
        pytest.skip("tests/e2e/apollo/node_modules is missing: run `make install` "
                    "(or `npm ci --prefix tests/e2e/apollo`)")
    return NODE


def register_agent(local_api: Any, ws: str, slug: str, name: str) -> int:
    """test_graphql_e2e.register_agent, loaded by path (works whether or not tests/e2e is a package)."""
    module_name = "_chatkeep_graphql_e2e_helpers"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, Path(__file__).with_name("test_graphql_e2e.py"))
        assert spec and spec.loader
        sys.modules[module_name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[module_name])
    return sys.modules[module_name].register_agent(local_api, ws, slug, name)


def run_node(script: str, env: dict[str, str], timeout: int = 180) -> dict[str, Any]:
    node = require_node()
    done = subprocess.run([node, script], cwd=APOLLO, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{script} failed ({done.returncode}):\n{done.stderr[-4000:]}\n{done.stdout[-2000:]}"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"{script} printed no JSON:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return json.loads(lines[-1])


def test_given_the_guides_client_code_on_apollo_client_4_then_the_whole_flow_works(request):
    require_node()  # before starting the runtime
    local_api = request.getfixturevalue("local_api")
    ws = f"ws-apollo-{uuid.uuid4().hex[:10]}"
    agent_id = register_agent(local_api, ws, "my-agent-slug", "My agent")
    env = {
        "BASE_URL": local_api.base_url,
        "TOKEN": local_api.token("apollo-user", ws, name="Ada"),
        "SERVICE_TOKEN": local_api.token("apollo-bot", ws, name="Bot", scope="chatkeep/service"),
        "TODO_ID": "12345",
        "BOT_SLUG": "my-agent-slug",
        "SESSION_COUNT": "23",
    }
    out = run_node("guide_client.mjs", env)

    assert out["steps"] == ["createSession", "SessionManager.createSession", "getSessionDetails", "updateSession",
                            "listSessionsWithPagination", "getStarterSession", "searchSessions",
                            "deleteManySessions"]
    first = out["created"]["first"]
    assert first["title"] == "Customer Support" and first["todoId"] == 12345
    assert first["__typename"] == "TodoChatSession"  # Apollo adds __typename to every selection; we serve it

    # Step 3 and the guide's rendering of the history.
    assert out["rendered"] == ["Ada: Hello, I have a billing question", "Bot: Happy to help with billing."]
    assert out["details"]["messages"][0]["sentBy"] == {"__typename": "ChatUser", "id": "apollo-user",
                                                       "firstName": "Ada"}
    assert out["managerDetails"] == {"id": out["created"]["billing"]["id"], "messages": 0}

    assert out["renamed"]["title"] == "Updated Session Title"
    assert out["renamedByManager"]["title"] == "Premium Support"

    # listSessionsWithPagination ended with every session, in activity order, and agrees with totalCount.
    assert out["firstPage"]["totalCount"] == 23 and len(out["firstPage"]["sessions"]) == 20
    assert out["paginated"]["count"] == 23 == len(set(out["paginated"]["ids"]))
    assert out["paginated"]["ids"][0] == first["id"]
    assert out["managerList"]["totalCount"] == 23

    # Starter session: the same one twice, with the registered agent as its bot; an unknown slug is NOT_FOUND.
    assert out["starter"]["first"] == out["starter"]["again"]
    assert out["starter"]["first"]["defaultBotId"] == agent_id
    assert out["botConfig"] == {"__typename": "TodoChatSession", "id": first["id"]}
    assert out["unknownSlug"] == {"codes": ["NOT_FOUND"], "thrown": True, "name": "CombinedGraphQLErrors"}

    # Search (from the stream-maintained index).
    assert out["streamDrained"] is True
    assert {s["id"] for s in out["search"]["billing"]} == {first["id"], out["created"]["billing"]["id"]}
    assert [s["title"] for s in out["search"]["support"]] == ["Premium Support"]
    assert out["search"]["nothing"] == []

    # Errors as Apollo surfaces them.
    assert out["errors"]["notFound"]["codes"] == ["NOT_FOUND"]
    assert out["errors"]["titleTooLong"]["codes"] == ["BAD_USER_INPUT"]

    # Delete one, delete many: only "Updated Session Title" is left.
    assert out["deleted"] == {"__typename": "TodoChatSession", "id": out["created"]["sales"]["id"]}
    assert out["deletedMany"] == 19
    assert out["deletedManyByManager"] == 1  # technical; sales was already gone
    assert out["afterDelete"]["totalCount"] == 1
    assert [s["id"] for s in out["afterDelete"]["sessions"]] == [first["id"]]
    assert out["deletedDetails"]["codes"] == ["NOT_FOUND"]


def test_given_apollos_persisted_query_link_then_hash_first_then_query_then_hash_only(request):
    require_node()
    local_api = request.getfixturevalue("local_api")
    token = local_api.token("apq-user", f"ws-apq-{uuid.uuid4().hex[:10]}", name="Pat")
    out = run_node("apq_client.mjs", {"BASE_URL": local_api.base_url, "TOKEN": token, "TODO_ID": "77"})
    expected_data = {"__typename": "TodoChatSessionList", "sessions": [], "totalCount": 0}
    first, second = out["first"], out["second"]
    assert first["data"] == second["data"] == expected_data
    # First client: the hash alone is unknown, Apollo retries with the query.
    assert [(w["hasQuery"], w["codes"]) for w in first["wire"]] == [(False, ["PERSISTED_QUERY_NOT_FOUND"]),
                                                                      (True, [])]
    # Second client: the server knows the hash now; the query text never goes over the wire.
    assert [(w["hasQuery"], w["codes"]) for w in second["wire"]] == [(False, [])]
    assert {w["hash"] for w in first["wire"] + second["wire"]} == {first["wire"][0]["hash"]}
    assert all(w["status"] == 200 for w in first["wire"] + second["wire"])
