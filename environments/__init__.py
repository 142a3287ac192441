"""Teacher environments: one module each (open_ended, skill_list, skill_tree, no_state), found by
`ENVIRONMENTS`. Adding an environment means adding a module here that defines `ENVIRONMENT`."""

from __future__ import annotations

import importlib
import pkgutil

from teachgraph.environments.base import EvaluationView, Observation, TeacherEnvironment


def _discover() -> dict[str, TeacherEnvironment]:
    found: dict[str, TeacherEnvironment] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        env = getattr(importlib.import_module(f"{__name__}.{module.name}"), "ENVIRONMENT", None)
        if isinstance(env, TeacherEnvironment):
            found[env.name] = env
    return found


ENVIRONMENTS: dict[str, TeacherEnvironment] = _discover()
DEFAULT_ENVIRONMENT = "skill-tree"


def get_environment(name: str) -> TeacherEnvironment:
    if name not in ENVIRONMENTS:
        raise ValueError(f"environment: unknown environment {name!r}; allowed: {sorted(ENVIRONMENTS)}")
    return ENVIRONMENTS[name]


__all__ = ["DEFAULT_ENVIRONMENT", "ENVIRONMENTS", "EvaluationView", "Observation", "TeacherEnvironment",
           "get_environment"]
