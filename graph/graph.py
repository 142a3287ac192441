"""The teaching loop:

    evaluate -> [discover_skills] -> [organize_skills] -> plan -> generate -> deduplicate -> review -> train -> evaluate ...
             \-> finalize (when a stop condition holds)          (review pauses only when asked to, and may stop the run)
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from teachgraph.graph.context import TeachContext
from teachgraph.graph.state import TeachState
from teachgraph.nodes import (deduplicate, discover_skills, evaluate, finalize, generate, organize_skills,
                              plan, review, train)


def route(state: TeachState) -> str:
    """Where the loop goes next, as the node that just ran decided (evaluate, discover_skills, review):
    the decision needs the run's configuration, the routing itself only the state, so that forking or
    editing a checkpoint (LangGraph's update_state) routes the same way."""
    return state["route"]


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
    builder.add_conditional_edges("evaluate", route, ["finalize", "plan", "discover_skills", "organize_skills"])
    builder.add_conditional_edges("discover_skills", route, ["organize_skills", "plan"])
    builder.add_edge("organize_skills", "plan")
    builder.add_edge("plan", "generate")
    builder.add_edge("generate", "deduplicate")
    builder.add_edge("deduplicate", "review")
    builder.add_conditional_edges("review", route, ["train", "finalize"])
    builder.add_edge("train", "evaluate")
    builder.add_edge("finalize", END)
    return builder.compile(checkpointer=checkpointer, name="teachgraph", **compile_options)


# For `langgraph dev` / LangGraph Studio, which brings its own persistence.
graph = build_graph()
