"""MnMs (m&m's, Ma et al. 2024): plan multi-step multi-modal tool use for a user request.

Data: the Hugging Face dataset `zixianma/mnms` (its files `test_human_verified_filtered.json`,
`test_human_verified.json`, `test_raw.json`), a local folder with those files, or `local`: the small
sample shipped in `teachgraph/domains/data/mnms` (same format; see its README). Rows are
`{"id", "user_request", "plan_str", "code_str", "alt_plans_str"}` with the plan a string holding a
list of nodes `{"id", "name", "args"}`; files are JSON lines or one JSON array.

Splits as in DataEnvGym: test = the human-verified, filtered set (882 executable plans); validation =
the rest of the human-verified set; the offline teacher's pool = the raw, unverified plans of tasks in
neither (real runs use the LLM teacher instead).

Skills: gold skill = the tuple of tools of the gold plan in order ("image editing > image captioning"),
subskill = its length. The student's prompt is the request (`catalogue_in_prompt=True` puts MnMs's
catalogue and instruction before it, for pretrained students; see `mnms_prompt`). Scoring: it writes a plan in MnMs's JSON format (`{"nodes": [...]}`, or
a bare list of nodes), parsed strictly; it is correct when its sequence of tools equals the gold one
(MnMs's plan accuracy). `metrics` gives MnMs's other static metrics (tool macro precision/recall/F1,
argument-name and argument-value F1 and accuracies); see `domains.tool_plans`. No MnMs tool runs
offline (each is a model or a web API), so plans are not executed here; a generated plan is accepted
only when it validates against the catalogue's signatures (known tools, exactly their arguments, values of
the right modality, references to an earlier node's output key).
"""

from __future__ import annotations

import ast
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, Field

from teachgraph.domains.base import Example, HeldOutDataset, example_id
from teachgraph.domains.loaders import DATA_DIR, DatasetUnavailable, LoadReport, hub_file, is_local, read_rows, validate_rows
from teachgraph.domains.tool_plans import ParsedPlan, Tool, parse_mnms, plan_metrics, validate

HUB_ID = "zixianma/mnms"
FILES = {"test": "test_human_verified_filtered.json", "verified": "test_human_verified.json", "raw": "test_raw.json"}
CATALOGUE_FILE = DATA_DIR / "mnms" / "tools.json"
INSTRUCTION = ("Write the tool nodes that solve the user request in strict JSON: "
               '{"nodes": [{"id": 0, "name": TOOL, "args": {ARG: VALUE}}]}; a value is text from the request, '
               "a file name, or '<node-j>.KEY' for output KEY of node j.")


def load_catalogue(path: Path = CATALOGUE_FILE) -> dict[str, Tool]:
    """MnMs's 33 tools by name (spaces as underscores, as MnMs's evaluator writes them)."""
    tools = {}
    for row in json.loads(path.read_text(encoding="utf-8")):
        name = row["name"].replace(" ", "_")
        tools[name] = Tool(name, tuple(row["args"]), tuple(row["arg_types"]), ",".join(row["outputs"]),
                           row["description"])
    return tools


CATALOGUE = load_catalogue()


def catalogue_text(catalogue: dict[str, Tool] = CATALOGUE) -> str:
    return "\n".join(f"{t.name.replace('_', ' ')}({', '.join(t.arg_names)}) -> {t.output.replace(',', ', ')}"
                     for t in catalogue.values())


def mnms_prompt(request: str, catalogue_in_prompt: bool = False) -> str:
    """The student's prompt: the user request, after the catalogue and MnMs's instruction when asked for.
    Off by default: the deduplication store compares whole prompts, and 1,400 characters of catalogue
    shared by every prompt would make every generated request a near-duplicate of every evaluation one."""
    if catalogue_in_prompt:
        return f"Tools:\n{catalogue_text()}\n{INSTRUCTION}\nUser request: {request.strip()}"
    return request.strip()


def plan_answer(nodes: list[dict[str, Any]]) -> str:
    return json.dumps({"nodes": nodes}, ensure_ascii=False)


def _plan_nodes(value: Any) -> list[dict[str, Any]]:
    """MnMs stores plans as strings of a list of nodes (JSON, or Python literals); never eval'd."""
    if isinstance(value, list):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError("no plan_str")
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return ast.literal_eval(value)


class MnmsNode(BaseModel):
    id: int = Field(description="0, 1, 2, ... in order.")
    name: str = Field(description="A tool of the catalogue, by its MnMs name (e.g. 'image captioning').")
    args: dict[str, Any] = Field(description="Exactly the tool's arguments: text from the request, a file name, "
                                             "or '<node-j>.KEY' for output KEY of an earlier node j.")


class MnmsItem(BaseModel):
    """One example as an LLM teacher writes it (the generator's structured-output schema)."""

    user_request: str = Field(description="A user request that needs the skill's tools, naming any input files.")
    nodes: list[MnmsNode] = Field(description="The plan: the tool nodes that solve the request, in order.")


def _skill_of(nodes: Sequence[dict[str, Any]]) -> tuple[str, str]:
    tools = [str(n.get("name", "")).replace("_", " ") for n in nodes]
    return " > ".join(tools), f"{len(tools)} step{'s' if len(tools) != 1 else ''}"


class MnmsDomain(HeldOutDataset):
    name = "mnms"
    default_max_new_tokens = 384
    drop_solved_default = True
    generation_schema = MnmsItem
    teacher_brief = (
        "Task domain mnms (m&m's tool use): the student reads a user request and writes a plan, the tool nodes "
        "that solve it, in strict JSON {\"nodes\": [{\"id\", \"name\", \"args\"}]}, choosing from 33 tools (13 "
        "multi-modal models, 9 public APIs, 11 image-processing modules); an argument is text, a file name, or "
        "'<node-j>.KEY' for an earlier node's output. A training example is a user request and its plan; plans "
        "calling unknown tools or passing arguments a tool does not take are rejected. Tools (arguments -> "
        "outputs):\n" + catalogue_text())

    def __init__(self, seed: int = 0, dataset: str = "local", catalogue_in_prompt: bool = False):
        self.seed, self.dataset, self.catalogue_in_prompt = seed, dataset, catalogue_in_prompt
        self.report = LoadReport(source=f"mnms:{dataset}")
        self._test = self._read("test")
        verified = self._read("verified")
        test_ids = {e["task_id"] for e in self._test}
        self._val = [e for e in verified if e["task_id"] not in test_ids]
        if not self._val or not self._test:
            raise DatasetUnavailable(f"mnms dataset {dataset!r}: empty {'validation' if not self._val else 'test'} "
                                     f"split ({self.report.summary()})")
        held_out = test_ids | {e["task_id"] for e in verified}
        self._pool = [e for e in self._read("raw", required=False) if e["task_id"] not in held_out]
        self._index()

    # -- reading ----------------------------------------------------------------------------
    def _path(self, kind: str, required: bool) -> Path | None:
        name = FILES[kind]
        if not is_local(self.dataset):
            return hub_file(self.dataset, name)
        folder = DATA_DIR / "mnms" if self.dataset == "local" else Path(self.dataset).expanduser()
        path = folder / name
        if path.exists():
            return path
        if required:
            raise DatasetUnavailable(f"mnms dataset folder {folder} has no {name} (MnMs layout: "
                                     f"{', '.join(FILES.values())})")
        return None

    def _read(self, kind: str, required: bool = True) -> list[Example]:
        path = self._path(kind, required)
        if path is None:
            return []
        text = path.read_text(encoding="utf-8-sig")
        if text.lstrip().startswith("["):  # one JSON array (also how `datasets` writes JSON)
            try:
                rows = [r for r in json.loads(text) if isinstance(r, dict)]
            except json.JSONDecodeError as error:
                raise DatasetUnavailable(f"{path}: not a JSON array ({error.msg})") from None
        else:
            rows = read_rows(path, self.report)
        return validate_rows(rows, self._example, self.report, path.name)

    def _example(self, row: dict[str, Any]) -> Example | str:
        request, task_id = row.get("user_request"), row.get("id")
        if not isinstance(request, str) or not request.strip():
            return "no user_request"
        if task_id is None:
            return "no id"
        nodes = _plan_nodes(row.get("plan_str"))
        if parse_mnms(nodes).verdict:
            return "plan_str is not a list of nodes"
        skill, subskill = _skill_of(nodes)
        prompt = mnms_prompt(request, self.catalogue_in_prompt)
        return {"id": example_id(prompt), "prompt": prompt, "answer": plan_answer(nodes), "task_id": str(task_id),
                "skill": skill, "subskill": subskill, "difficulty": ("easy", "medium", "hard")[min(len(nodes), 3) - 1]}

    # -- scoring ----------------------------------------------------------------------------
    def judge(self, prediction: str, example: Example) -> str:
        """'correct' (the gold sequence of tools), 'wrong_plan', or why the output is not a plan."""
        predicted = parse_mnms(prediction)
        if predicted.verdict:
            return predicted.verdict
        return "correct" if predicted.tools == parse_mnms(example["answer"]).tools else "wrong_plan"

    def score(self, prediction: str, example: Example) -> bool:
        return self.judge(prediction, example) == "correct"

    def metrics(self, results: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The metrics of an evaluation's results (nodes.evaluate.score_split: each prediction beside its
        example's fields), as the evaluate and finalize nodes record them."""
        return self.metrics_of([r["prediction"] for r in results], results)

    def metrics_of(self, predictions: Sequence[str], examples: Sequence[Example]) -> dict[str, Any]:
        """MnMs's static metrics, overall and per skill."""
        predicted: list[ParsedPlan] = [parse_mnms(p) for p in predictions]
        gold = [parse_mnms(e["answer"]) for e in examples]
        out = plan_metrics(predicted, gold, list(CATALOGUE))
        groups: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(examples):
            groups[e["skill"]].append(i)
        out["per_skill_plan_accuracy"] = {
            s: round(100 * sum(predicted[i].tools == gold[i].tools for i in idx) / len(idx), 2)
            for s, idx in sorted(groups.items())}
        return out

    # -- skills -----------------------------------------------------------------------------
    def skill_catalog(self) -> dict[str, list[str]]:
        catalog: dict[str, set[str]] = defaultdict(set)
        for e in self._val + self._test + self._pool:
            catalog[e["skill"]].add(e["subskill"])
        return {s: sorted(subs) for s, subs in sorted(catalog.items())}

    def describe_skill(self, skill: str) -> str:
        return f"requests whose plan calls, in order: {skill}"

    def verify(self, example: Example) -> str | None:
        """None when the example's plan validates against the catalogue's signatures."""
        return validate(parse_mnms(str(example.get("answer", ""))), CATALOGUE, compact=False)

    def from_generated(self, item: MnmsItem, skill: str | None, subskill: str | None) -> Example:
        nodes = [{"id": n.id, "name": n.name, "args": n.args} for n in item.nodes]
        prompt = mnms_prompt(item.user_request, self.catalogue_in_prompt)
        gold_skill, gold_subskill = _skill_of(nodes)
        return {"id": example_id(prompt), "prompt": prompt, "answer": plan_answer(nodes),
                "skill": skill or gold_skill, "subskill": subskill or gold_subskill}
