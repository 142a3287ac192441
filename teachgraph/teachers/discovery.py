"""Offline skill discovery: gold skills from the domain's labels, or clusters of validation prompts.

Output: {"method", "skills": {name: {"description", "subskills": [...], "exemplars": [...], "n_val"}},
         "assignment": {example_id: skill}}  (the assignment maps every validation example).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from teachgraph.domains.base import Domain, Example


class GoldSkillDiscoverer:
    method = "gold"

    def discover(self, domain: Domain, examples: list[Example], seed: int) -> dict[str, Any]:
        catalog = domain.skill_catalog()
        members: dict[str, list[Example]] = defaultdict(list)
        for ex in examples:
            members[ex["skill"]].append(ex)
        skills = {name: {"description": domain.describe_skill(name), "subskills": subs,
                         "exemplars": [e["prompt"] for e in members[name][:3]], "n_val": len(members[name])}
                  for name, subs in catalog.items()}
        return {"method": self.method, "skills": skills, "assignment": {e["id"]: e["skill"] for e in examples}}


def kmeans(x: np.ndarray, k: int, seed: int, iterations: int = 50) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding, deterministic in seed. Returns labels."""
    rng = np.random.default_rng(seed)
    centers = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
        centers.append(x[rng.choice(len(x), p=d2 / d2.sum())] if d2.sum() > 0 else x[rng.integers(len(x))])
    c = np.asarray(centers)
    labels = np.zeros(len(x), dtype=int)
    for _ in range(iterations):
        new = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        if _ and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            if np.any(labels == j):
                c[j] = x[labels == j].mean(0)
    return labels


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    d = np.sqrt(np.maximum(((x[:, None, :] - x[None]) ** 2).sum(-1), 0))
    scores = []
    for i in range(len(x)):
        same = labels == labels[i]
        if same.sum() <= 1:
            scores.append(0.0)
            continue
        a = d[i, same].sum() / (same.sum() - 1)
        b = min(d[i, labels == j].mean() for j in set(labels.tolist()) if j != labels[i])
        scores.append((b - a) / max(a, b))
    return float(np.mean(scores))


_WORD = re.compile(r"[A-Za-z][A-Za-z_]+")


def name_clusters(prompts: list[str], labels: np.ndarray) -> dict[int, str]:
    """Name each cluster by the words most over-represented in it (word frequency in the cluster
    divided by its frequency overall), made unique."""
    overall = Counter(w.lower() for p in prompts for w in set(_WORD.findall(p)))
    names: dict[int, str] = {}
    for j in sorted(set(labels.tolist())):
        inside = Counter(w.lower() for p, l in zip(prompts, labels) if l == j for w in set(_WORD.findall(p)))
        size = int((labels == j).sum())
        ranked = sorted(inside, key=lambda w: (-(inside[w] / size) * (inside[w] / overall[w]), w))
        base = "_".join(ranked[:2]) if ranked else f"cluster_{j}"
        name, n = base, 2
        while name in names.values():
            name, n = f"{base}_{n}", n + 1
        names[j] = name
    return names


class ClusterSkillDiscoverer:
    """Embed validation prompts with MiniLM (local weights), cluster with k-means (k given, or the
    best silhouette in 2..16), and name each cluster from its words. Subskills of a cluster are the
    domain subskills its members fall into, where the domain can tell, else prompt-length terciles."""

    method = "cluster"

    def __init__(self, num_clusters: int | None = None, embed=None):
        self.num_clusters = num_clusters
        self._embed = embed

    def embed(self, texts: list[str]) -> np.ndarray:
        if self._embed is None:
            from teachgraph.dedup.embeddings import minilm_embed

            self._embed = minilm_embed
        return self._embed(texts)

    def discover(self, domain: Domain, examples: list[Example], seed: int) -> dict[str, Any]:
        prompts = [e["prompt"] for e in examples]
        x = self.embed(prompts)
        if self.num_clusters:
            labels = kmeans(x, min(self.num_clusters, len(x)), seed)
        else:
            sample = np.random.default_rng(seed).choice(len(x), size=min(len(x), 400), replace=False)
            best = max(range(2, min(16, len(x) - 1) + 1),
                       key=lambda k: silhouette(x[sample], kmeans(x[sample], k, seed)))
            labels = kmeans(x, best, seed)
        names = name_clusters(prompts, labels)
        skills: dict[str, Any] = {}
        for j, name in names.items():
            members = [e for e, l in zip(examples, labels) if l == j]
            inferred = Counter(s[1] for s in (domain.infer_skill(e["prompt"]) for e in members) if s)
            subskills = [s for s, _ in inferred.most_common()] or ["short", "medium", "long"]
            skills[name] = {"description": f"prompts like: {'; '.join(e['prompt'] for e in members[:3])}",
                            "subskills": subskills, "exemplars": [e["prompt"] for e in members[:8]],
                            "n_val": len(members)}
        return {"method": self.method, "skills": skills,
                "assignment": {e["id"]: names[int(l)] for e, l in zip(examples, labels)}}
