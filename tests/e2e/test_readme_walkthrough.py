"""The README's first walkthrough runs as written against `chatkeep dev`, so it cannot rot.

The walkthrough is the README's ```bash blocks that follow a `<!-- walkthrough: NAME -->` marker. They run in
order, in one bash process (`set -euo pipefail`; variables carry from block to block, as in the reader's
terminal), from the repository root, with PORT set to the port of the session's `chatkeep dev` (the `local_api`
fixture). Each `# => EXPECTED` line of a block must match a whole line of that block's output (stdout and
stderr), where `...` stands for anything.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- walkthrough: ([\w-]+) -->\s*\n```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
EXPECTED = re.compile(r"^# => (.*)$", re.MULTILINE)
STEP_MARK = "@@walkthrough-step "
# What the walkthrough must keep covering (a step may grow, none may disappear unnoticed).
STEPS = ["setup", "agent-and-channel", "conversation", "history-and-search", "close", "expiry", "delete", "graphql",
         "managed-agent"]


def walkthrough_blocks(readme: str) -> list[tuple[str, str]]:
    return [(name, body) for name, body in BLOCK.findall(readme)]


def expectation(line: str) -> re.Pattern[str]:
    """`# => {"id":"ses_...",...}` -> a pattern where each `...` matches anything on the line."""
    return re.compile(".*?".join(re.escape(part) for part in line.split("...")))


def printed(pattern: re.Pattern[str], output: str) -> bool:
    return any(pattern.fullmatch(line.rstrip("\r")) for line in output.splitlines())


def run_walkthrough(blocks: list[tuple[str, str]], port: int) -> tuple[int, dict[str, str]]:
    script = ["set -euo pipefail", "exec 2>&1"]
    for name, body in blocks:
        script += [f"echo '{STEP_MARK}{name}'", body]
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=REPO, capture_output=True, text=True,  # noqa: S603
                          env={**os.environ, "PORT": str(port)}, timeout=180, check=False)
    outputs: dict[str, str] = {}
    current = "(before the first step)"
    for line in done.stdout.splitlines():
        if line.startswith(STEP_MARK):
            current = line[len(STEP_MARK):]
            outputs[current] = ""
        else:
            outputs[current] = outputs.get(current, "") + line + "\n"
    return done.returncode, outputs


def test_given_the_readme_when_its_walkthrough_blocks_are_read_then_every_step_is_there_in_order() -> None:
    blocks = walkthrough_blocks((REPO / "README.md").read_text(encoding="utf-8"))

    assert [name for name, _ in blocks] == STEPS
    assert all(EXPECTED.search(body) for _, body in blocks), "every step shows what to expect"


def test_given_chatkeep_dev_when_the_readme_walkthrough_runs_then_every_step_prints_what_the_readme_says(
        local_api) -> None:
    if not (REPO / ".venv" / "bin" / "chatkeep").exists():
        pytest.skip("the walkthrough calls .venv/bin/chatkeep: run `make install` first")
    blocks = walkthrough_blocks((REPO / "README.md").read_text(encoding="utf-8"))

    status, outputs = run_walkthrough(blocks, local_api.port)

    everything = "\n".join(f"--- {name}\n{text}" for name, text in outputs.items())
    assert status == 0, f"the walkthrough stopped (exit {status}):\n{everything}"
    for name, body in blocks:
        for line in EXPECTED.findall(body):
            assert printed(expectation(line), outputs.get(name, "")), (
                f"step {name!r}: expected a line matching {line!r}; it printed:\n{outputs.get(name, '')}")


def test_given_an_expected_line_then_it_matches_whole_output_lines_with_dots_as_wildcards() -> None:
    pattern = expectation('{"id":"ses_...","status":"closed",...}')

    assert printed(pattern, 'HTTP 200\n{"id":"ses_c1s","status":"closed","title":null}\r\n')
    assert not printed(pattern, '{"id":"ses_c1s","status":"active"}')
    assert not printed(expectation("HTTP 20"), "HTTP 204")
