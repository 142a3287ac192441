"""teachgraph: a LangGraph teacher that writes the training data its student needs."""

__version__ = "0.1.0"
