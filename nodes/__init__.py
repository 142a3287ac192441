"""One node per file: each a plain function of the graph state and the run's context."""

from nodes.deduplicate import deduplicate
from nodes.discover_skills import discover_skills
from nodes.evaluate import evaluate
from nodes.finalize import finalize
from nodes.generate import generate
from nodes.organize_skills import organize_skills
from nodes.plan import plan
from nodes.review import review
from nodes.train import train

__all__ = ["deduplicate", "discover_skills", "evaluate", "finalize", "generate", "organize_skills", "plan", "review", "train"]
