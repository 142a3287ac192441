"""The teaching loop as a LangGraph graph."""

from teachgraph.graph.context import ConfigError, TeachContext, make_context
from teachgraph.graph.graph import build_graph, graph
from teachgraph.graph.state import TeachState

__all__ = ["ConfigError", "TeachContext", "TeachState", "build_graph", "graph", "make_context"]
