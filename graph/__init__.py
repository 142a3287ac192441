"""The teaching loop as a LangGraph graph."""

from graph.context import ConfigError, TeachContext, make_context
from graph.graph import build_graph, graph
from graph.state import TeachState

__all__ = ["ConfigError", "TeachContext", "TeachState", "build_graph", "graph", "make_context"]
