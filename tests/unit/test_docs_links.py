"""Relative links in the repository's documentation resolve: the file exists and, for `file.md#anchor` or
`#anchor`, the anchor is a heading of that file (GitHub's slug rules) or an explicit `<a id=...>`/`<a name=...>`.

Checked: README.md, CHANGELOG.md, docs/**/*.md, bench/*.md. Links inside fenced code blocks and inline code
spans are not links and are skipped, as are absolute URLs (http, https, mailto)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted({REPO / "README.md", REPO / "CHANGELOG.md", *REPO.glob("docs/**/*.md"), *REPO.glob("bench/*.md")})

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target "title") and ![alt](target); the target may be wrapped in <...>.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(\S+)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)\s*$")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * len(match.group(1))
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is None:
            out.append((number, line))
    return out


def heading_text(markdown: str) -> str:
    """The text GitHub renders for a heading's inline markdown (the slug is computed from it)."""
    text = INLINE_CODE.sub(lambda m: m.group(2).strip(), markdown)
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\([^)]*\)", r"\1", text)  # links and images -> their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    return text.replace("*", "")


def github_slug(text: str) -> str:
    """GitHub's heading anchors: lowercase, drop punctuation but keep letters, digits, '_' and '-', then each
    space becomes '-' (so "REST API — /v1" is "rest-api--v1")."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    seen: Counter[str] = Counter()
    out: set[str] = set()
    lines = prose_lines(text)
    for index, (_, line) in enumerate(lines):
        match = HEADING.match(line)
        title = match.group(2) if match else None
        following = lines[index + 1][1] if index + 1 < len(lines) else ""
        if title is None and line.strip() and SETEXT_UNDERLINE.match(following) and not HEADING.match(line):
            title = line.strip()
        if title is not None:
            slug = github_slug(heading_text(title))
            out.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
            seen[slug] += 1
        out.update(EXPLICIT_ANCHOR.findall(line))
    return out


def links(path: Path) -> list[tuple[int, str]]:
    out = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        line = INLINE_CODE.sub("", line)
        targets = [m.group(1) for m in INLINE_LINK.finditer(line)]
        targets += REFERENCE_DEFINITION.findall(line)
        out += [(number, t[1:-1] if t.startswith("<") else t) for t in targets]
    return out


def broken_links(path: Path, root: Path = REPO) -> list[str]:
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{number}: {target}"
        if not resolved.exists():
            problems.append(f"{where}: {file_part} does not exist")
        elif not resolved.is_relative_to(root):
            problems.append(f"{where}: points outside the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where}: no heading with the anchor #{anchor} in {resolved.relative_to(root)}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_given_a_document_when_its_relative_links_are_followed_then_each_file_and_anchor_exists(doc: Path) -> None:
    assert broken_links(doc) == []


def test_given_the_documentation_set_then_the_readme_and_the_docs_folder_are_checked() -> None:
    checked = {str(p.relative_to(REPO)) for p in DOCS}
    assert {"README.md", "CHANGELOG.md", "bench/README.md", "docs/architecture.md"} <= checked


def test_given_headings_when_slugged_then_they_follow_githubs_rules() -> None:
    assert github_slug(heading_text("REST API — `/v1`")) == "rest-api--v1"
    assert github_slug(heading_text("Identity: Cognito or any OIDC issuer")) == "identity-cognito-or-any-oidc-issuer"
    assert github_slug(heading_text("Dev-only endpoints (`/_local/...`, never deployed)")) == (
        "dev-only-endpoints-_local-never-deployed")
    assert github_slug(heading_text("Sample events and `sam local invoke`")) == "sample-events-and-sam-local-invoke"
    assert github_slug(heading_text("**Bold** and [a link](x.md)")) == "bold-and-a-link"
    assert github_slug(heading_text("1. Cold start")) == "1-cold-start"


def test_given_a_broken_link_and_a_missing_anchor_when_checked_then_both_are_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Same\n\n## Same\n", encoding="utf-8")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Title\n\n"
        "[ok](other.md) [ok](other.md#same-1) [ok](#title) [web](https://example.com/x)\n"
        "[gone](missing.md) [no anchor](other.md#nope) `[code](ignored.md)`\n\n"
        "```\n[in a fence](ignored.md)\n```\n",
        encoding="utf-8")

    problems = broken_links(doc, root=tmp_path)

    assert len(problems) == 2, problems
    assert "missing.md does not exist" in problems[0]
    assert "#nope" in problems[1]
