"""Task domains behind one small protocol (`domains.base.Domain`)."""

from __future__ import annotations

from typing import Any

from domains.base import DIFFICULTIES, Domain, Example, example_id, normalize_text, stable_hash
from domains.synthetic import SyntheticDomain

DOMAINS = {"synthetic": SyntheticDomain}


def get_domain(name: str, seed: int = 0, **options: Any) -> Domain:
    if name not in DOMAINS:
        raise ValueError(f"domain: unknown domain {name!r}; allowed: {sorted(DOMAINS)}")
    return DOMAINS[name](seed=seed, **options)


__all__ = ["DIFFICULTIES", "DOMAINS", "Domain", "Example", "SyntheticDomain", "example_id", "get_domain",
           "normalize_text", "stable_hash"]
