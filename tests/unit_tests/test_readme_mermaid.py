"""The README's Mermaid diagram is the graph as built: regenerate it with `teachgraph graph --mermaid`
and paste it into the ```mermaid block of README.md whenever a node or an edge changes."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```mermaid[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _normalise(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


def test_readme_mermaid_matches_the_graph():
    from teachgraph.graph import graph

    assert README.exists(), "README.md is missing"
    blocks = BLOCK.findall(README.read_text(encoding="utf-8"))
    assert len(blocks) == 1, f"README.md should hold exactly one ```mermaid block, found {len(blocks)}"
    current = graph.get_graph().draw_mermaid()
    assert _normalise(blocks[0]) == _normalise(current), (
        "README.md's Mermaid diagram is stale; replace the block with the output of `teachgraph graph --mermaid`")
