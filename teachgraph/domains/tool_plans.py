"""Tool-use plans: a catalogue of typed tools, a strict plan parser, a plan interpreter, and MnMs's metrics.

A plan is a sequence of tool calls; an argument may refer to the output of an earlier call. Two plan
formats are read, both strict JSON (anything else gets a verdict, never a guess):

* compact (the offline `tools` domain, short enough for a character-level student):
  `[["price","pear"],["mul","$0",3]]` - one array per call, the tool name then its positional
  arguments; the string "$k" is the output of call k (0-based, earlier calls only).
* MnMs (`{"nodes": [...]}` or a bare list of nodes): `{"id": 0, "name": "image captioning",
  "args": {"image": "17320.jpg"}}`; a reference is the string "<node-k>.key" (as in MnMs).

Metrics follow MnMs's evaluator (github.com/RAIVNLab/mnms, mnms/evaluation/{evaluator,metrics}.py):
plan accuracy = the predicted sequence of tool names equals the gold one exactly; tool macro
precision/recall/F1 = sklearn's `precision_recall_fscore_support(average="macro")` over the catalogue's
tools, each example contributing its *set* of tools (a tool in both sets is a true positive of that tool,
in the gold set only a false negative, in the predicted set only a false positive; a tool with no
positives and no predictions counts 0, as sklearn's zero_division default does); argument-name and
argument-value F1 = binary precision/recall over "tool--arg" / "tool--arg=value" labels; plan accuracy
with argument names / values = exact equality of those label sequences. An unparseable prediction is an
empty plan (MnMs scores it against the gold plan the same way).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

REFERENCE = re.compile(r"^\$(\d+)$")
NODE_REFERENCE = re.compile(r"<node-(\d+)>\.(\w+)")
MAX_INT = 10**12
MAX_STR = 200


@dataclass(frozen=True)
class Tool:
    name: str
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]          # "int" | "str" (compact) or MnMs modalities ("text", "image", ...)
    output: str                         # the output's type (compact) or its key names joined by "," (MnMs)
    description: str
    run: Callable[..., Any] | None = None  # None: the tool cannot run offline (a model or a web API)

    def signature(self) -> str:
        args = ", ".join(f"{n}:{t}" for n, t in zip(self.arg_names, self.arg_types))
        return f"{self.name}({args}) -> {self.output}"


@dataclass
class ParsedPlan:
    """What a prediction parsed to: its calls as (tool, args), or the verdict that it is not a plan."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    verdict: str | None = None          # None: well formed; else unparseable / not_a_plan / ...

    @property
    def tools(self) -> list[str]:
        return [tool for tool, _ in self.calls]


# -- parsing ---------------------------------------------------------------------------------------
def _strict_json(text: str) -> Any:
    """JSON, or ValueError; NaN/Infinity are refused (they are not JSON)."""
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text.strip(), parse_constant=refuse)


def parse_compact(text: str, catalogue: dict[str, Tool]) -> ParsedPlan:
    """A compact plan, its calls named by the catalogue's argument names (unknown tools keep theirs
    positional, as arg0, arg1, ... so that metrics still see them)."""
    try:
        data = _strict_json(text)
    except ValueError:
        return ParsedPlan(verdict="unparseable")
    if not isinstance(data, list) or not data:
        return ParsedPlan(verdict="not_a_plan")
    calls = []
    for step in data:
        if not isinstance(step, list) or not step or not isinstance(step[0], str):
            return ParsedPlan(verdict="not_a_plan")
        tool = catalogue.get(step[0])
        names = tool.arg_names if tool and len(tool.arg_names) == len(step) - 1 else \
            tuple(f"arg{i}" for i in range(len(step) - 1))
        calls.append((step[0], dict(zip(names, step[1:]))))
    return ParsedPlan(calls=calls)


def parse_mnms(value: Any) -> ParsedPlan:
    """An MnMs plan: a JSON string or an already-decoded object/list of nodes."""
    if isinstance(value, str):
        try:
            value = _strict_json(value)
        except ValueError:
            return ParsedPlan(verdict="unparseable")
    if isinstance(value, dict):
        value = value.get("nodes")
    if not isinstance(value, list) or not value:
        return ParsedPlan(verdict="not_a_plan")
    calls = []
    for node in value:
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            return ParsedPlan(verdict="not_a_plan")
        args = node.get("args") or {}
        if not isinstance(args, dict):
            return ParsedPlan(verdict="not_a_plan")
        calls.append((node["name"].replace(" ", "_"), dict(args)))
    return ParsedPlan(calls=calls)


# -- validation and execution ------------------------------------------------------------------------
def _reference(value: Any, compact: bool) -> tuple[int, str] | None:
    """(call index, output key) when the value is a whole reference to an earlier call's output."""
    if not isinstance(value, str):
        return None
    if compact:
        match = REFERENCE.match(value)
        return (int(match.group(1)), "") if match else None
    match = NODE_REFERENCE.fullmatch(value)
    return (int(match.group(1)), match.group(2)) if match else None


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in ("integer", "number"):  # MnMs's numeric arguments appear as numbers or numeric strings
        return (isinstance(value, (int, float)) and not isinstance(value, bool)) or \
            (isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit())
    if kind == "list[dict]":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return isinstance(value, str)  # str, and MnMs's text / image / audio (a file name)


def validate(plan: ParsedPlan, catalogue: dict[str, Tool], compact: bool = True) -> str | None:
    """None when every call names a catalogue tool with the right arguments of the right types, and
    every reference points to an earlier call of a fitting output; else the first problem."""
    if plan.verdict:
        return plan.verdict
    outputs: list[Tool] = []
    for index, (name, args) in enumerate(plan.calls):
        tool = catalogue.get(name)
        if tool is None:
            return "unknown_tool"
        if set(args) != set(tool.arg_names):
            return "wrong_arguments"
        for arg_name, kind in zip(tool.arg_names, tool.arg_types):
            value = args[arg_name]
            ref = _reference(value, compact)
            if ref is not None:
                target, key = ref
                if target >= index:
                    return "bad_reference"
                if compact and outputs[target].output != kind:
                    return "wrong_type"
                if not compact and key not in outputs[target].output.split(","):
                    return "bad_reference"
            elif not _type_ok(value, kind):
                return "wrong_type"
        outputs.append(tool)
    return None


def execute(plan: ParsedPlan, catalogue: dict[str, Tool]) -> tuple[Any, str | None]:
    """(the last call's output, None) for a valid compact plan of offline tools, else (None, verdict).

    Plans are data, not code: each call runs one of the catalogue's own pure functions on JSON values
    (bounded in size, so a plan cannot blow up memory), and nothing a student or teacher wrote is
    executed, which is why this needs no process sandbox."""
    problem = validate(plan, catalogue, compact=True)
    if problem:
        return None, problem
    results: list[Any] = []
    for name, args in plan.calls:
        tool = catalogue[name]
        if tool.run is None:
            return None, "not_executable"
        values = []
        for arg_name in tool.arg_names:
            ref = _reference(args[arg_name], compact=True)
            values.append(results[ref[0]] if ref else args[arg_name])
        try:
            out = tool.run(*values)
        except (ValueError, KeyError, OverflowError):
            return None, "execution_error"
        if (isinstance(out, int) and abs(out) >= MAX_INT) or (isinstance(out, str) and len(out) > MAX_STR):
            return None, "execution_error"
        results.append(out)
    return results[-1], None


# -- MnMs's metrics -----------------------------------------------------------------------------------
def _value_label(value: Any) -> str:
    """An argument value as MnMs labels it: the Python source of the value in its generated code
    (`nodes_to_code`), lower-cased: references become output{k}['key'], other values quoted strings."""
    if isinstance(value, str):
        match = NODE_REFERENCE.fullmatch(value) if " " not in value else None
        if match:
            return f"output{match.group(1)}['{match.group(2)}']".lower()
        if "<node-" in value:
            text = NODE_REFERENCE.sub(lambda m: "{" + f"output{m.group(1)}['{m.group(2)}']" + "}", value)
            return ("f" + json.dumps(text)).lower()
        ref = REFERENCE.match(value)
        if ref:
            return f"output{ref.group(1)}".lower()
        return repr(value).lower()
    return repr(str(value)).lower()


def plan_labels(plan: ParsedPlan, names: bool = False, values: bool = False) -> list[str]:
    """MnMs's `get_code_labels`: one label per call, "tool", "tool--arg" or "tool--arg=value"
    (arguments sorted by name)."""
    labels = []
    for tool, args in plan.calls:
        parts = [tool]
        if names:
            for arg_name in sorted(args):
                parts.append(f"{arg_name}={_value_label(args[arg_name])}" if values else arg_name)
        labels.append("--".join(parts))
    return labels


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _binary_prf(gold: Sequence[list[str]], pred: Sequence[list[str]]) -> dict[str, float]:
    tp = fp = fn = 0
    for g, p in zip(gold, pred):
        g_set, p_set = set(g), set(p)
        tp, fp, fn = tp + len(g_set & p_set), fp + len(p_set - g_set), fn + len(g_set - p_set)
    precision, recall, f1 = _prf(tp, fp, fn)
    return {"precision": round(100 * precision, 2), "recall": round(100 * recall, 2), "f1": round(100 * f1, 2)}


def tool_macro_prf(gold: Sequence[list[str]], pred: Sequence[list[str]], tools: Sequence[str]) -> dict[str, float]:
    """Macro precision/recall/F1 over the catalogue's tools (MnMs's "tool_macro")."""
    counts = {t: [0, 0, 0] for t in tools}  # tp, fp, fn
    for g, p in zip(gold, pred):
        g_set, p_set = set(g) & set(tools), set(p) & set(tools)
        for t in g_set & p_set:
            counts[t][0] += 1
        for t in p_set - g_set:
            counts[t][1] += 1
        for t in g_set - p_set:
            counts[t][2] += 1
    scores = [_prf(*counts[t]) for t in tools]
    n = len(scores) or 1
    return {k: round(100 * sum(s[i] for s in scores) / n, 2) for i, k in enumerate(("precision", "recall", "f1"))}


def plan_metrics(predicted: Sequence[ParsedPlan], gold: Sequence[ParsedPlan], tools: Sequence[str]) -> dict[str, Any]:
    """MnMs's static metrics (percentages) of predicted plans against gold plans."""
    n = len(gold)

    def accuracy(p_labels, g_labels):
        return round(100 * sum(p == g for p, g in zip(p_labels, g_labels)) / n, 2) if n else 0.0

    by = {}
    for key, names, values in (("tool", False, False), ("argname", True, False), ("argvalue", True, True)):
        by[key] = ([plan_labels(p, names, values) for p in predicted], [plan_labels(g, names, values) for g in gold])
    return {"n": n, "invalid": sum(1 for p in predicted if p.verdict),
            "plan_accuracy": accuracy(*by["tool"]),
            "plan_argname_accuracy": accuracy(*by["argname"]),
            "plan_argvalue_accuracy": accuracy(*by["argvalue"]),
            "tool_macro": tool_macro_prf(by["tool"][1], by["tool"][0], tools),
            "argname": _binary_prf(by["argname"][1], by["argname"][0]),
            "argvalue": _binary_prf(by["argvalue"][1], by["argvalue"][0])}
