"""Task domains behind one small protocol (`domains.base.Domain`).

The real-dataset domains (math, code) are imported on first use: their scoring pulls in sympy and
the sandbox, which the synthetic default does not need.
"""

from __future__ import annotations

import importlib
from typing import Any

from teachgraph.domains.base import DIFFICULTIES, Domain, Example, example_id, example_key, normalize_text, stable_hash
from teachgraph.domains.synthetic import SyntheticDomain

DOMAINS = {
    "synthetic": "teachgraph.domains.synthetic:SyntheticDomain",
    "math": "teachgraph.domains.math:MathDomain",
    "code": "teachgraph.domains.code:CodeDomain",
    "tools": "teachgraph.domains.tools:ToolsDomain",
    "mnms": "teachgraph.domains.mnms:MnmsDomain",
    "vqa": "teachgraph.domains.vqa:VQADomain",
    "gqa": "teachgraph.domains.vqa_benchmarks:GQADomain",
    "naturalbench": "teachgraph.domains.vqa_benchmarks:NaturalBenchDomain",
}


def domain_class(name: str) -> type:
    if name not in DOMAINS:
        raise ValueError(f"domain: unknown domain {name!r}; allowed: {sorted(DOMAINS)}")
    module, cls = DOMAINS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_domain(name: str, seed: int = 0, **options: Any) -> Domain:
    return domain_class(name)(seed=seed, **options)


def load_domain(ctx: Any) -> Domain:
    """The domain a run configuration names, with its data loaded (split by `data_seed`)."""
    return get_domain(ctx.domain, seed=ctx.data_seed, **ctx.domain_options)


__all__ = ["DIFFICULTIES", "DOMAINS", "Domain", "Example", "SyntheticDomain", "domain_class", "example_id", "example_key",
           "get_domain", "load_domain", "normalize_text", "stable_hash"]
