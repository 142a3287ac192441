"""Fixtures shared by the sandbox and code-runner tests."""

from __future__ import annotations

import pytest

from teachgraph.domains.sandbox import isolation_available

# The guard-only fallback: a machine without bubblewrap, namespaces, Landlock, seccomp or capabilities.
FALLBACK = "bwrap,netns,landlock,seccomp,caps"
KERNEL_ONLY_LAYERS = {"bwrap", "netns", "userns", "landlock", "seccomp", "caps"}


@pytest.fixture(params=["full", "fallback"])
def mode(request, monkeypatch):
    """Programs run twice: under every layer this machine has, and guard-only (checked to be in force)."""
    if request.param == "fallback":
        monkeypatch.setenv("TEACHGRAPH_SANDBOX_DISABLE", FALLBACK)
    else:
        monkeypatch.delenv("TEACHGRAPH_SANDBOX_DISABLE", raising=False)
    available = {layer for layer, ok in isolation_available().items() if ok}
    if request.param == "fallback":
        assert not available & KERNEL_ONLY_LAYERS
    else:
        assert {"rlimits", "no_new_privs", "audit_guard"} <= available
    return request.param
