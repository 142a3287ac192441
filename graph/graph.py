"""The teaching loop:

    evaluate -> [discover_skills] -> [organize_skills] -> plan -> generate -> deduplicate -> review -> train -> evaluate ...
             \-> finalize (when a stop condition holds)          (review pauses only when asked to, and may stop the run)
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from teachgraph.environments import get_environment
from teachgraph.graph.context import TeachContext, context_of
from teachgraph.graph.state import TeachState
from teachgraph.nodes import (after_review, deduplicate, discover_skills, evaluate, finalize, generate, organize_skills,
                              plan, review, train)


def after_evaluate(state: TeachState, runtime: Runtime[TeachContext]) -> str:
    """finalize when a stop condition holds; else discover skills (first cycle, or every N) where the
    environment uses skills, then organize them where it keeps a skill tree, then plan."""
    if state.get("stop_reason"):
        return "finalize"
    ctx = context_of(runtime)
    environment = get_environment(ctx.environment)
    rediscover = ctx.rediscover_every and state["cycle"] > 0 and state["cycle"] % ctx.rediscover_every == 0
    if environment.uses_skills and (not state.get("skills") or rediscover):
        return "discover_skills"
    return "organize_skills" if environment.organizes_skills else "plan"


def after_discovery(state: TeachState, runtime: Runtime[TeachContext]) -> str:
    return "organize_skills" if get_environment(context_of(runtime).environment).organizes_skills else "plan"


def build_graph(checkpointer: Any = None, **compile_options: Any):
    """The compiled teaching graph. Pass a checkpointer (e.g. SqliteSaver) to make runs resumable;
    invoke with `context=TeachContext(...)` (or a dict of its fields)."""
    builder = StateGraph(TeachState, context_schema=TeachContext)
    builder.add_node("evaluate", evaluate)
    builder.add_node("discover_skills", discover_skills)
    builder.add_node("organize_skills", organize_skills)
    builder.add_node("plan", plan)
    builder.add_node("generate", generate)
    builder.add_node("deduplicate", deduplicate)
    builder.add_node("review", review)
    builder.add_node("train", train)
    builder.add_node("finalize", finalize)

    builder.add_edge(START, "evaluate")
    builder.add_conditional_edges("evaluate", after_evaluate,
                                  ["finalize", "plan", "discover_skills", "organize_skills"])
    builder.add_conditional_edges("discover_skills", after_discovery, ["organize_skills", "plan"])
    builder.add_edge("organize_skills", "plan")
    builder.add_edge("plan", "generate")
    builder.add_edge("generate", "deduplicate")
    builder.add_edge("deduplicate", "review")
    builder.add_conditional_edges("review", after_review, ["train", "finalize"])
    builder.add_edge("train", "evaluate")
    builder.add_edge("finalize", END)
    return builder.compile(checkpointer=checkpointer, name="teachgraph", **compile_options)


# For `langgraph dev` / LangGraph Studio, which brings its own persistence.
graph = build_graph()
