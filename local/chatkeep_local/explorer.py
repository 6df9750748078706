"""The GraphQL explorer that `chatkeep dev` serves to a browser at `GET /graphql`: GraphiQL, from the files in
static/graphiql (vendored from npm by scripts/vendor-graphiql.sh: offline, no CDN), with the dev token already in
its headers. API Gateway has no such route (GET /graphql is a 404 there): the explorer answers only a browser
(`Accept: text/html`) and only when the template declares no GET route for the path."""

from __future__ import annotations

import json
from pathlib import Path

STATIC = Path(__file__).with_name("static") / "graphiql"
ASSET_PREFIX = "/_local/graphiql/"
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".txt": "text/plain; charset=utf-8"}
STARTER_QUERY = """# chatkeep dev. The headers below carry the banner's token
# (sub dev-user, workspace dev); the book icon opens the docs.
query Sessions($todoId: Float!) {
  getTodoChatSessions(todoId: $todoId, limit: 5) {
    totalCount
    sessions { id title status messageCount expiresAt }
  }
}
"""

Response = tuple[int, list[tuple[str, str]], bytes]


def wants_page(method: str, headers: dict[str, str]) -> bool:
    """A browser navigating to the GraphQL path (a GET that accepts HTML), not an API client."""
    return method in ("GET", "HEAD") and "text/html" in headers.get("accept", "")


def page(graphql_url: str, token: str, introspection: bool) -> Response:
    config = {
        "url": graphql_url,
        "query": STARTER_QUERY,
        "variables": json.dumps({"todoId": 1}, indent=2),
        "headers": json.dumps({"Authorization": f"Bearer {token}"}, indent=2),
        "note": "" if introspection else (
            "Introspection is off (--parameter EnableIntrospection=false): no schema, docs or completion; "
            "queries still run."),
    }
    # JSON inside a <script>: no "</" may close it early.
    config_js = json.dumps(config).replace("</", "<\\/")
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>chatkeep GraphQL explorer (chatkeep dev)</title>
<link rel="stylesheet" href="{ASSET_PREFIX}graphiql.min.css">
<style>
  html, body, #graphiql {{ height: 100%; margin: 0; }}
  #note {{ font: 14px sans-serif; padding: 6px 12px; background: #fff4ce; }}
  #note:empty {{ display: none; }}
  body {{ display: flex; flex-direction: column; }}
  #graphiql {{ flex: 1; }}
</style>
</head>
<body>
<div id="note"></div>
<div id="graphiql">Loading the explorer...</div>
<script src="{ASSET_PREFIX}react.production.min.js"></script>
<script src="{ASSET_PREFIX}react-dom.production.min.js"></script>
<script src="{ASSET_PREFIX}graphiql.min.js"></script>
<script>
  const config = {config_js};
  document.getElementById("note").textContent = config.note;
  const fetcher = GraphiQL.createFetcher({{ url: config.url }});
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {{
      fetcher,
      defaultQuery: config.query,
      variables: config.variables,
      headers: config.headers,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: "headers",
    }}),
  );
</script>
</body>
</html>
"""
    return 200, [("content-type", "text/html; charset=utf-8"), ("cache-control", "no-store")], html.encode()


def asset(path: str) -> Response | None:
    """`/_local/graphiql/<file>`: one of the vendored files, or None (not one of them)."""
    name = path.removeprefix(ASSET_PREFIX)
    file = STATIC / name
    content_type = ASSET_TYPES.get(file.suffix)
    if "/" in name or content_type is None or not file.is_file():
        return None
    return 200, [("content-type", content_type), ("cache-control", "max-age=86400")], file.read_bytes()


__all__ = ["ASSET_PREFIX", "asset", "page", "wants_page"]
