"""One node per file: each a plain function of the graph state and the run's runtime (configuration and
live services); `common.Step` holds what they all do besides their own step."""

from teachgraph.nodes.deduplicate import deduplicate
from teachgraph.nodes.discover_skills import discover_skills
from teachgraph.nodes.evaluate import evaluate
from teachgraph.nodes.finalize import finalize
from teachgraph.nodes.generate import generate
from teachgraph.nodes.organize_skills import organize_skills
from teachgraph.nodes.plan import plan
from teachgraph.nodes.review import review
from teachgraph.nodes.train import train

__all__ = ["deduplicate", "discover_skills", "evaluate", "finalize", "generate", "organize_skills",
           "plan", "review", "train"]
