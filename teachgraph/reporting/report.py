"""Run reports: report.md with plots (learning curve, per-skill heatmap, data per skill, the skill tree,
several runs compared) and a data card (data_card.md) of the accepted and dropped training data.

    from teachgraph.reporting.report import write_report
    write_report(["runs/skill-tree-s0"])                  # -> runs/skill-tree-s0/report/report.md
    write_report(["runs/a", "runs/b"])                    # -> runs/report-compare/report.md (+ a/, b/)

Everything is read from the run directory (config.json, summary.json, skills.json, skill_tree.json,
cycles/cycle_NNN/{accepted,dropped}.jsonl); nothing is recomputed. Plots use matplotlib's Agg
backend; without matplotlib the markdown is written alone and says why.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teachgraph.io import write_text_atomic

SAMPLE_SIZE = 12  # examples shown in the data card


class ReportError(ValueError):
    """A directory that cannot be reported on (not a run, not finished, unreadable)."""


# -- reading a run ---------------------------------------------------------------------------------


@dataclass
class RunData:
    root: Path
    label: str
    run_id: str
    config: dict[str, Any]
    summary: dict[str, Any]
    skills: dict[str, Any] | None
    skill_tree: dict[str, Any] | None
    accepted: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    dropped: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def cycles(self) -> list[dict[str, Any]]:
        return self.summary["cycles"]

    @property
    def skill_names(self) -> list[str]:
        names: list[str] = []
        for record in self.cycles:
            names += [s for s in record.get("per_skill", {}) if s not in names]
        return sorted(names)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReportError(f"{path} ({what}) is unreadable: {error}") from None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    rows.append(json.loads(line))
    except (OSError, ValueError) as error:
        raise ReportError(f"{path} is unreadable: {error}") from None
    return rows


def load_run(run_dir: str | Path, label: str | None = None) -> RunData:
    """Everything a report needs from a finished run directory; ReportError says what is missing."""
    root = Path(run_dir)
    if not root.exists():
        raise ReportError(f"{run_dir} does not exist")
    if not root.is_dir():
        raise ReportError(f"{run_dir} is not a directory")
    if not (root / "config.json").exists():
        raise ReportError(f"{run_dir} is not a teachgraph run directory (no config.json)")
    stored = _read_json(root / "config.json", "the run's configuration")
    summary_path = root / "summary.json"
    if not summary_path.exists():
        evaluated = sorted((root / "cycles").glob("cycle_*/eval_val.jsonl")) if (root / "cycles").is_dir() else []
        if not evaluated:
            raise ReportError(f"{run_dir} has no finished cycle yet (no evaluation, no summary.json); "
                              f"run it (`teachgraph resume {run_dir}`) before asking for a report")
        raise ReportError(f"{run_dir} has not finished (no summary.json; {len(evaluated)} cycle(s) evaluated so far); "
                          f"finish it with `teachgraph resume {run_dir}`, then report again")
    summary = _read_json(summary_path, "the run's summary")
    if not isinstance(summary, dict) or not summary.get("cycles"):
        raise ReportError(f"{run_dir} has no finished cycle (summary.json lists no cycles)")
    skills = _read_json(root / "skills.json", "discovered skills") if (root / "skills.json").exists() else None
    tree = _read_json(root / "skill_tree.json", "the skill tree") if (root / "skill_tree.json").exists() else None
    run = RunData(root=root, label=label or root.resolve().name, run_id=str(stored.get("run_id", "")),
                  config=stored.get("config") or summary.get("config") or {}, summary=summary,
                  skills=skills, skill_tree=tree)
    for record in summary["cycles"]:
        k = int(record["cycle"])
        cycle_dir = root / "cycles" / f"cycle_{k:03d}"
        if k > 0:
            run.accepted[k] = _read_jsonl(cycle_dir / "accepted.jsonl")
            run.dropped[k] = _read_jsonl(cycle_dir / "dropped.jsonl")
    return run


def skill_of(example: dict[str, Any]) -> str:
    """The teacher's skill of a generated example (provenance), falling back to its domain label."""
    return str((example.get("provenance") or {}).get("skill") or example.get("skill") or "?")


def subskill_of(example: dict[str, Any]) -> str:
    return str((example.get("provenance") or {}).get("subskill") or example.get("subskill") or "-")


def data_per_skill(run: RunData) -> dict[str, dict[int, dict[str, int]]]:
    """{skill: {cycle: {"generated": n, "kept": n}}} (generated = kept + dropped)."""
    counts: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: {"generated": 0, "kept": 0}))
    for k, rows in run.accepted.items():
        for ex in rows:
            counts[skill_of(ex)][k]["generated"] += 1
            counts[skill_of(ex)][k]["kept"] += 1
    for k, rows in run.dropped.items():
        for ex in rows:
            counts[skill_of(ex)][k]["generated"] += 1
    return {s: {k: dict(v) for k, v in sorted(c.items())} for s, c in sorted(counts.items())}


# -- plots -------------------------------------------------------------------------------------------


def _pyplot():
    """pyplot on the Agg backend, unless pyplot is already set up (e.g. inline in a notebook)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and "inline" not in os.environ.get("MPLBACKEND", ""):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_learning_curve(run: RunData, ax=None):
    """Validation accuracy per cycle; the test accuracy of the best cycle marked."""
    plt = _pyplot()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4))
    cycles = [r["cycle"] for r in run.cycles]
    ax.plot(cycles, [r["val_accuracy"] for r in run.cycles], "o-", color="tab:blue", label="validation")
    best = run.summary.get("best_cycle")
    if best is not None and run.summary.get("test_accuracy") is not None:
        ax.plot([best], [run.summary["test_accuracy"]], marker="*", markersize=16, color="tab:red", linestyle="none",
                label=f"test at best cycle {best}: {run.summary['test_accuracy']:.1%}")
        ax.axvline(best, color="tab:red", alpha=0.25, linestyle="--")
    ax.set_xlabel("cycle")
    ax.set_ylabel("accuracy")
    ax.set_xticks(cycles)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    ax.set_title(f"{run.label}: learning curve")
    return fig if fig is not None else ax.figure


def plot_skill_heatmap(run: RunData, ax=None):
    """Validation accuracy of every skill (rows) after every cycle (columns)."""
    plt = _pyplot()
    skills = run.skill_names
    cycles = [r["cycle"] for r in run.cycles]
    values = [[r.get("per_skill", {}).get(s, float("nan")) for r in run.cycles] for s in skills]
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(4.0, 1.0 + 0.7 * len(cycles)), max(2.5, 0.8 + 0.42 * len(skills))))
    image = ax.imshow(values, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(cycles)), [str(c) for c in cycles])
    ax.set_yticks(range(len(skills)), skills)
    ax.set_xlabel("cycle")
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            if v == v:  # not NaN
                ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=8,
                        color="black" if 0.25 < v < 0.8 else "white")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="validation accuracy")
    ax.set_title(f"{run.label}: accuracy per skill")
    return fig if fig is not None else ax.figure


def plot_data_per_skill(run: RunData):
    """Generated and kept examples per skill, stacked per cycle."""
    plt = _pyplot()
    counts = data_per_skill(run)
    cycles = sorted(run.accepted)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    cmap = plt.get_cmap("tab20")
    for ax, key in zip(axes, ("generated", "kept")):
        bottom = [0] * len(cycles)
        for i, (skill, per_cycle) in enumerate(counts.items()):
            heights = [per_cycle.get(k, {}).get(key, 0) for k in cycles]
            ax.bar([str(k) for k in cycles], heights, bottom=bottom, color=cmap(i % 20), label=skill)
            bottom = [b + h for b, h in zip(bottom, heights)]
        ax.set_title(f"{key} per skill")
        ax.set_xlabel("cycle")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("examples")
    if counts:
        axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    else:
        axes[0].text(0.5, 0.5, "no training cycle", ha="center", va="center", transform=axes[0].transAxes)
    fig.suptitle(f"{run.label}: training data")
    return fig


def tree_of(run: RunData) -> dict[str, Any] | None:
    """The skill forest to draw: skill_tree.json, or (other environments) the discovered skills with
    their last validation accuracies and no allocations."""
    if run.skill_tree and run.skill_tree.get("skills"):
        return run.skill_tree
    if not run.skills or not run.skills.get("skills"):
        return None
    last = run.cycles[-1]
    forest: dict[str, Any] = {"skills": {}}
    for skill, info in run.skills["skills"].items():
        sub_acc = last.get("per_subskill", {}).get(skill, {})
        forest["skills"][skill] = {
            "accuracy": last.get("per_skill", {}).get(skill),
            "subskills": {name: {"allocation": None, "accuracy": sub_acc.get(name)}
                          for name in (info.get("subskills") or [])}}
    return forest


def draw_skill_tree(forest: dict[str, Any], ax=None, title: str = "skill tree"):
    """The skill forest drawn with matplotlib alone: each skill a box, its subskills as children with
    their allocation (examples per cycle) and validation accuracy; boxes coloured by accuracy."""
    plt = _pyplot()
    cmap = plt.get_cmap("RdYlGn")
    skills = forest.get("skills", {})
    rows = sum(max(1, len(t.get("subskills", {}))) for t in skills.values())
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, max(2.5, 0.42 * rows + 0.8)))
    ax.set_xlim(0, 10)
    ax.set_ylim(rows + 0.5, -0.8)
    ax.axis("off")

    def colour(acc):
        return (0.88, 0.88, 0.88) if acc is None else cmap(0.15 + 0.7 * float(acc))

    def pct(acc):
        return "n/a" if acc is None else f"{float(acc):.0%}"

    y = 0
    for skill, tree in skills.items():
        subs = tree.get("subskills", {}) or {}
        n = max(1, len(subs))
        centre = y + (n - 1) / 2
        for i, (name, sub) in enumerate(subs.items()):
            sy = y + i
            ax.plot([3.1, 3.45, 3.45, 3.8], [centre, centre, sy, sy], color="0.45", linewidth=1)
            allocation = sub.get("allocation")
            text = f"{name}  ·  " + ("" if allocation is None else f"alloc {allocation}  ·  ") + f"acc {pct(sub.get('accuracy'))}"
            if sub.get("data_total"):
                text += f"  ·  data {sub['data_total']}"
            ax.text(3.85, sy, text, va="center", ha="left", fontsize=8.5,
                    bbox={"boxstyle": "round,pad=0.25", "facecolor": colour(sub.get("accuracy")), "edgecolor": "0.4"})
        ax.text(3.0, centre, f"{skill}\nacc {pct(tree.get('accuracy'))}", va="center", ha="right", fontsize=9.5,
                fontweight="bold",
                bbox={"boxstyle": "round,pad=0.35", "facecolor": colour(tree.get("accuracy")), "edgecolor": "0.2"})
        y += n
    if not skills:
        ax.text(5, 0, "no skills", ha="center")
    ax.set_title(title)
    return fig if fig is not None else ax.figure


def plot_compare(runs: list[RunData]):
    """Learning curves of several runs on one plot (test accuracy at each best cycle marked)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, run in enumerate(runs):
        colour = plt.get_cmap("tab10")(i % 10)
        cycles = [r["cycle"] for r in run.cycles]
        ax.plot(cycles, [r["val_accuracy"] for r in run.cycles], "o-", color=colour, label=f"{run.label} (val)")
        best = run.summary.get("best_cycle")
        if best is not None and run.summary.get("test_accuracy") is not None:
            ax.plot([best], [run.summary["test_accuracy"]], marker="*", markersize=14, color=colour, linestyle="none")
    ax.plot([], [], marker="*", color="0.3", linestyle="none", markersize=12, label="test at best cycle")
    ax.set_xlabel("cycle")
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title("learning curves")
    return fig


# -- markdown --------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1%}"


def _run_markdown(run: RunData, images: dict[str, str], note: str | None, card_link: str) -> str:
    s, c = run.summary, run.config
    best = s.get("best_cycle")
    lines = [f"# teachgraph run report: {run.label}", ""]
    if note:
        lines += [f"> {note}", ""]
    lines += [
        f"- run directory: `{run.root}`  (run id / thread id `{run.run_id}`)",
        f"- environment **{s.get('environment', c.get('environment'))}**, domain {c.get('domain')}, seed {s.get('seed', c.get('seed'))}, "
        f"student {c.get('student')} ({c.get('finetune')} fine-tuning, {c.get('train_mode')})",
        f"- cycles {len(run.cycles) - 1} of {c.get('cycles')}, budget used {s.get('budget_used')} of {c.get('budget')}, "
        f"training examples {s.get('train_examples_total')}, stopped: {s.get('stop_reason')}",
        "",
        "## Result",
        "",
        f"**Best cycle: {best}** (validation {_pct(s.get('best_val_accuracy'))}); "
        f"**test accuracy at the best cycle: {_pct(s.get('test_accuracy'))}**; "
        f"validation gain over the base student: {float(s.get('val_gain', 0)) * 100:+.1f} points.",
        "",
    ]
    if "learning_curve" in images:
        lines += [f"![learning curve]({images['learning_curve']})", ""]
    rows, previous = [], None
    for r in run.cycles:
        seconds = r.get("seconds", {})
        dropped = ", ".join(f"{k} {v}" for k, v in r.get("dropped", {}).items()) or "-"
        rows.append([r["cycle"] if r["cycle"] != best else f"**{r['cycle']}** (best)", _pct(r["val_accuracy"]),
                     "" if previous is None else f"{(r['val_accuracy'] - previous) * 100:+.1f}",
                     r.get("generated", 0), r.get("kept", 0), dropped, f"{sum(seconds.values()):.1f}"])
        previous = r["val_accuracy"]
    lines += ["## Cycles", "", _table(["cycle", "val acc", "Δ points", "generated", "kept", "dropped", "seconds"], rows), ""]

    lines += ["## Accuracy per skill", ""]
    if "skill_heatmap" in images:
        lines += [f"![accuracy per skill]({images['skill_heatmap']})", ""]
    best_record = next((r for r in run.cycles if r["cycle"] == best), run.cycles[-1])
    test_per_skill = s.get("test_per_skill", {})
    lines += [_table(["skill", "base (cycle 0)", f"best (cycle {best})", "test at best"],
                     [[sk, _pct(run.cycles[0].get("per_skill", {}).get(sk)), _pct(best_record.get("per_skill", {}).get(sk)),
                       _pct(test_per_skill.get(sk))] for sk in run.skill_names]), ""]

    lines += ["## Training data per skill", ""]
    if "data_per_skill" in images:
        lines += [f"![data per skill]({images['data_per_skill']})", ""]
    counts = data_per_skill(run)
    cycles = sorted(run.accepted)
    if counts:
        lines += [_table(["skill"] + [f"cycle {k} kept/gen" for k in cycles] + ["kept", "generated"],
                         [[sk] + [f"{pc.get(k, {}).get('kept', 0)}/{pc.get(k, {}).get('generated', 0)}" for k in cycles]
                          + [sum(v["kept"] for v in pc.values()), sum(v["generated"] for v in pc.values())]
                          for sk, pc in counts.items()]), ""]
    else:
        lines += ["No training cycle ran, so there is no generated data.", ""]
    lines += [f"The data card ([{card_link}]({card_link})) breaks the accepted data down by subskill and generator, "
              "the drops by reason, and shows a sample.", ""]

    lines += ["## Skill tree", ""]
    if not (run.skill_tree and run.skill_tree.get("skills")) and run.skills:
        lines += ["This environment keeps no skill tree: these are the discovered skills and subskills with their "
                  "last validation accuracies (no allocations).", ""]
    if "skill_tree" in images:
        lines += [f"![skill tree]({images['skill_tree']})", ""]
    forest = tree_of(run)
    if forest:
        tree_rows = []
        for skill, tree in forest["skills"].items():
            for name, sub in (tree.get("subskills") or {}).items():
                tree_rows.append([skill, _pct(tree.get("accuracy")), name,
                                  "-" if sub.get("allocation") is None else sub["allocation"], _pct(sub.get("accuracy"))])
        lines += [_table(["skill", "skill acc", "subskill", "allocation", "subskill acc"], tree_rows), ""]
    else:
        lines += ["This run has no skills (open-ended environment).", ""]
    if "generated_images" in images:
        lines += ["## Sample generated images", "",
                  "Pictures the teacher generated (drawn by the image engine, stored under each cycle's `images/` with "
                  "their provenance), with their questions and answers:", "",
                  f"![generated images]({images['generated_images']})", ""]
    return "\n".join(lines)


def data_card(run: RunData, sample_size: int = SAMPLE_SIZE) -> str:
    """Counts of the accepted data by skill/subskill/cycle/generator, drops by reason, a sample."""
    accepted = [ex for k in sorted(run.accepted) for ex in run.accepted[k]]
    dropped = [ex for k in sorted(run.dropped) for ex in run.dropped[k]]
    cycles = sorted(run.accepted)
    lines = [f"# Data card: {run.label}", "",
             f"Training data generated by the teacher of run `{run.root}` (environment {run.summary.get('environment')}, "
             f"seed {run.summary.get('seed')}): **{len(accepted)} accepted** and **{len(dropped)} dropped** examples "
             f"over {len(cycles)} training cycle(s). Accepted examples are in `cycles/cycle_NNN/accepted.jsonl` with "
             "their provenance (cycle, skill, subskill, generator, teacher model, prompt hash, seed); dropped ones in "
             "`dropped.jsonl` with their `drop_reason`.", ""]

    by_sub: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for k in cycles:
        for ex in run.accepted[k]:
            by_sub[(skill_of(ex), subskill_of(ex))][k] += 1
    lines += ["## Accepted examples by skill and subskill", ""]
    if by_sub:
        lines += [_table(["skill", "subskill"] + [f"cycle {k}" for k in cycles] + ["total"],
                         [[sk, sub] + [cnt.get(k, 0) for k in cycles] + [sum(cnt.values())]
                          for (sk, sub), cnt in sorted(by_sub.items())]), ""]
    else:
        lines += ["None.", ""]

    by_skill = Counter(skill_of(ex) for ex in accepted)
    lines += ["## Accepted examples by skill", "",
              _table(["skill", "accepted", "share"],
                     [[sk, n, f"{n / max(1, len(accepted)):.1%}"] for sk, n in sorted(by_skill.items())]), ""]
    lines += ["## Accepted examples by cycle", "",
              _table(["cycle", "accepted", "dropped"],
                     [[k, len(run.accepted[k]), len(run.dropped.get(k, []))] for k in cycles]), ""]
    by_gen = Counter(((ex.get("provenance") or {}).get("generator", "?"), (ex.get("provenance") or {}).get("teacher_model", "?"))
                     for ex in accepted)
    lines += ["## Accepted examples by generator", "",
              _table(["generator", "teacher model", "accepted"], [[g, m, n] for (g, m), n in sorted(by_gen.items())]), ""]

    reasons: dict[str, Counter] = defaultdict(Counter)
    for k in cycles:
        for ex in run.dropped.get(k, []):
            reasons[str(ex.get("drop_reason", "?"))][k] += 1
    lines += ["## Drops by reason", ""]
    if reasons:
        lines += [_table(["reason"] + [f"cycle {k}" for k in cycles] + ["total"],
                         [[r] + [cnt.get(k, 0) for k in cycles] + [sum(cnt.values())] for r, cnt in sorted(reasons.items())]), ""]
    else:
        lines += ["No example was dropped.", ""]

    rng = random.Random(0)
    lines += [f"## Sample of accepted examples ({min(sample_size, len(accepted))} of {len(accepted)}, fixed seed)", ""]
    sample = sorted(rng.sample(range(len(accepted)), min(sample_size, len(accepted))))
    if sample:
        lines += [_table(["cycle", "skill", "subskill", "prompt", "answer", "generator"],
                         [[(accepted[i].get("provenance") or {}).get("cycle", "?"), skill_of(accepted[i]), subskill_of(accepted[i]),
                           f"`{accepted[i].get('prompt', '')}`", f"`{accepted[i].get('answer', '')}`",
                           (accepted[i].get("provenance") or {}).get("generator", "?")] for i in sample]), ""]
    if dropped:
        drop_sample = sorted(rng.sample(range(len(dropped)), min(5, len(dropped))))
        lines += [f"## Sample of dropped examples ({len(drop_sample)} of {len(dropped)})", "",
                  _table(["cycle", "skill", "prompt", "answer", "reason"],
                         [[(dropped[i].get("provenance") or {}).get("cycle", "?"), skill_of(dropped[i]),
                           f"`{dropped[i].get('prompt', '')}`", f"`{dropped[i].get('answer', '')}`",
                           dropped[i].get("drop_reason", "?")] for i in drop_sample]), ""]
    return "\n".join(lines)


# -- the report ------------------------------------------------------------------------------------


def _labels(run_dirs: list[str]) -> list[str]:
    labels: list[str] = []
    for d in run_dirs:
        base = Path(d).resolve().name or "run"
        label, n = base, 2
        while label in labels:
            label, n = f"{base}-{n}", n + 1
        labels.append(label)
    return labels


GRID_IMAGES = 12  # generated pictures shown in the report's grid


def generated_with_images(run: RunData) -> list[dict[str, Any]]:
    """Accepted examples that carry a picture (a scene or an image file), first of each skill first, in a
    fixed order."""
    from teachgraph.domains.images import has_image

    rows = [e for k in sorted(run.accepted) for e in run.accepted[k] if has_image(e)]
    firsts, rest, seen = [], [], set()
    for e in rows:
        (rest if skill_of(e) in seen else firsts).append(e)
        seen.add(skill_of(e))
    return (firsts + rest)[:GRID_IMAGES]


def plot_generated_images(run: RunData):
    """A grid of generated pictures, each titled with its question and answer."""
    from teachgraph.domains.images import BadImage, example_image, open_image_file

    plt = _pyplot()
    examples = generated_with_images(run)
    columns = min(4, len(examples))
    rows = math.ceil(len(examples) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, e in zip(axes.flat, examples):
        stored = ((e.get("provenance") or {}).get("image") or {}).get("path")
        try:
            image = open_image_file(stored) if stored and Path(stored).exists() else example_image(e)
        except BadImage:
            continue
        ax.imshow(image, interpolation="nearest")
        question = e.get("prompt", "")
        question = question if len(question) <= 40 else question[:38] + "..."
        ax.set_title(f"{question}\n-> {e.get('answer', '')} [{skill_of(e)}]", fontsize=8)
    fig.suptitle(f"{run.label}: sample generated images and their questions", fontsize=10)
    fig.tight_layout()
    return fig


def _plots(run: RunData, out: Path) -> dict[str, str]:
    images = {
        "learning_curve": _save(plot_learning_curve(run), out / "learning_curve.png"),
        "skill_heatmap": _save(plot_skill_heatmap(run), out / "skill_heatmap.png"),
        "data_per_skill": _save(plot_data_per_skill(run), out / "data_per_skill.png"),
    }
    if generated_with_images(run):
        images["generated_images"] = _save(plot_generated_images(run), out / "generated_images.png")
    forest = tree_of(run)
    if forest:
        images["skill_tree"] = _save(draw_skill_tree(forest, title=f"{run.label}: skill tree"), out / "skill_tree.png")
    return {k: Path(v).name for k, v in images.items()}


def _matplotlib_problem() -> str | None:
    try:
        _pyplot()
    except Exception as error:  # noqa: BLE001 - any failure means: markdown only
        return f"Plots were not drawn: matplotlib could not be imported ({type(error).__name__}: {error})."
    return None


def _write_one(run: RunData, out: Path, problem: str | None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    images = {} if problem else _plots(run, out)
    write_text_atomic(out / "data_card.md", data_card(run) + "\n")
    report = out / "report.md"
    write_text_atomic(report, _run_markdown(run, images, problem, "data_card.md") + "\n")
    return report


def write_report(run_dirs: list[str] | str, out_dir: str | None = None) -> Path:
    """Write report.md, data_card.md and PNG plots for one or several finished runs; returns report.md.

    One run: everything goes to OUT_DIR (default RUN_DIR/report). Several runs: OUT_DIR (default
    COMMON_PARENT/report-compare) holds report.md with their learning curves on one plot and a table, and one
    subfolder per run with that run's report. Raises ReportError (a ValueError) for a directory that
    is not a run, or a run without summary.json or without a finished cycle.
    """
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [str(run_dirs)]
    if not run_dirs:
        raise ReportError("no run directory given")
    labels = _labels([str(d) for d in run_dirs])
    runs = [load_run(d, label) for d, label in zip(run_dirs, labels)]  # every error before any writing
    problem = _matplotlib_problem()
    if len(runs) == 1:
        out = Path(out_dir) if out_dir else runs[0].root / "report"
        return _write_one(runs[0], out, problem)

    out = Path(out_dir) if out_dir else Path(os.path.commonpath([str(r.root.resolve()) for r in runs])) / "report-compare"
    out.mkdir(parents=True, exist_ok=True)
    for run in runs:
        _write_one(run, out / run.label, problem)
    lines = ["# teachgraph runs compared", ""]
    if problem:
        lines += [f"> {problem}", ""]
    else:
        _save(plot_compare(runs), out / "compare.png")
        lines += ["![learning curves](compare.png)", ""]
    rows = [[f"[{r.label}]({r.label}/report.md)", r.summary.get("environment"), r.summary.get("seed"), len(r.cycles) - 1,
             _pct(r.cycles[0]["val_accuracy"]), r.summary.get("best_cycle"), _pct(r.summary.get("best_val_accuracy")),
             _pct(r.summary.get("test_accuracy")), r.summary.get("budget_used"), r.summary.get("stop_reason")] for r in runs]
    lines += [_table(["run", "environment", "seed", "cycles", "base val", "best cycle", "best val", "test at best",
                      "budget used", "stopped"], rows), ""]
    report = out / "report.md"
    write_text_atomic(report, "\n".join(lines) + "\n")
    return report
