"""Prompt templates of the LLM teacher agents: one template per agent, for every domain.

What is domain-specific (what the task is, what a good example looks like) comes from the domain
(`domain.teacher_brief`, its skill descriptions and example prompts), never from copies of these
templates. Every system prompt starts with a marker `[teachgraph:<role>]` naming the agent's role
(servers and logs can tell the calls apart), and every user prompt carries its data as JSON between
<input> and </input>. The generator's calls share one system prompt and order their input from the most
static fields to the most varying (`INPUT_ORDER`), so a server's prefix cache reuses most of each prompt
(benchmarks/prompt_prefix.py measures how much).
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

def marker(role: str) -> str:
    return f"[teachgraph:{role}]"


def domain_brief(domain: Any) -> str:
    """The domain's own description of its task for a teacher (a generic one when it has none)."""
    brief = getattr(domain, "teacher_brief", None)
    if brief:
        return str(brief)
    return (f"Task domain {getattr(domain, 'name', 'unknown')}: each example is a prompt and its short, "
            "exactly checkable answer.")


_SYSTEM = {
    "skill_label": (
        "You are the metacognitive skill-discovery agent of a teacher that writes training data for a small "
        "student model.\n{brief}\n"
        "For every example in the input, name the single skill a student needs to answer it, as a short "
        "snake_case name (2-4 words), and give a one-sentence reason. Use the same name for examples that need "
        "the same skill. Answer with JSON: {{\"labels\": [{{\"id\", \"skill\", \"reason\"}}]}}, one label per "
        "input example, ids copied exactly."),
    "skill_group": (
        "You are the metacognitive skill-discovery agent of a teacher that writes training data for a small "
        "student model.\n{brief}\n"
        "Group the skill labels in the input into mutually exclusive categories (every label in exactly one "
        "category; at most {max_categories} categories). For each category give a snake_case name, a one-line "
        "description, its labels, and 2-4 graded subskills, easiest first. Answer with JSON: "
        "{{\"categories\": [{{\"name\", \"description\", \"labels\", \"subskills\"}}]}}."),
    "skill_map": (
        "You are the metacognitive skill-discovery agent of a teacher that writes training data for a small "
        "student model.\n{brief}\n"
        "Assign every example in the input to exactly one of the given categories (use the category names "
        "exactly). Answer with JSON: {{\"assignments\": [{{\"id\", \"category\"}}]}}."),
    "organizer": (
        "You are the skill-tree organizer of a teacher that writes training data for a small student model.\n"
        "{brief}\n"
        "You manage one skill's tree of subskills. Each cycle you take one action: 'explore' adds new subskills "
        "(at most {room} more; each with the number of examples to write for it), or 'exploit' changes the "
        "allocations of existing subskills (allocation_kind 'set' gives new values, 'delta' changes; 0 prunes). "
        "The history shows each past action and its reward (the change in the skill's validation accuracy). "
        "Spend data where the student fails and is still learning: new subskills of a skill the student "
        "already answers well get few examples, those of a skill it fails get many. Answer with JSON matching "
        "the schema."),
    "planner": (
        "You are the planner of a teacher that writes training data for a small student model.\n{brief}\n"
        "Write this cycle's data-generation plan: a list of requests (skill, subskill, difficulty, count, "
        "exemplars) whose counts add up to exactly {budget}. Give more data to skills with low accuracy, keep "
        "a little for every skill, and use the sample errors as exemplars. Answer with JSON: "
        "{{\"requests\": [...], \"notes\": \"...\"}}."),
    # The generator's system prompt is the same for every request of a run (nothing of the request in it),
    # so a server's prefix cache (SGLang's radix cache, llama.cpp's prompt cache) reuses it; see INPUT_ORDER.
    "generator": (
        "You are the data generator of a teacher that writes training data for a small student model.\n"
        "{brief}\n"
        "Write exactly `count` (given in the input) new, distinct, CORRECT training examples for the requested "
        "skill (and subskill and difficulty, when given), in the same format as the exemplars. Every answer "
        "must be exactly right. Do not repeat any prompt listed under avoid. Answer with JSON: "
        "{{\"examples\": [{{{fields}}}]}}."),
}

# The order of a role's input fields, most static first: what is the same for more requests comes earlier,
# so requests share a longer prefix with each other (the per-skill fields for every batch of the skill, the
# per-request ones for its batches and top-ups), and what changes per call (seed, count, avoid) comes last.
# Fields not named here (none, today) go between, sorted; roles not named here sort all their fields.
INPUT_ORDER: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "generator": (("skill", "description", "exemplars", "subskill", "difficulty"),
                  ("cycle", "seed", "count", "avoid")),
}
# A closing line after the input, for what changes per call and a model should not miss.
_USER_TAIL = {"generator": "Write exactly {count} examples."}


def example_fields(domain: Any) -> str:
    """The fields of one generated example: the domain's own generation schema, else prompt and answer."""
    schema = getattr(domain, "generation_schema", None)
    names = list(schema.model_fields) if schema is not None else ["prompt", "answer"]
    return ", ".join(f'"{name}"' for name in names)


def _ordered(role: str, data: dict[str, Any]) -> dict[str, Any]:
    """`data` with its keys in the role's INPUT_ORDER (nested values with sorted keys, as before)."""
    first, last = INPUT_ORDER.get(role, ((), ()))
    middle = sorted(k for k in data if k not in first and k not in last)
    keys = [k for k in first if k in data] + middle + [k for k in last if k in data]
    return {k: json.loads(json.dumps(data[k], sort_keys=True)) for k in keys}


def messages(role: str, domain: Any, data: dict[str, Any], **fields: Any) -> list[BaseMessage]:
    """The [system, user] messages of one agent call: the role's instructions and the domain's brief, then
    its input as JSON, the fields that vary most last (INPUT_ORDER)."""
    fields = {"fields": example_fields(domain), **fields}
    system = marker(role) + "\n" + _SYSTEM[role].format(brief=domain_brief(domain), **fields)
    if role in INPUT_ORDER:
        body = json.dumps(_ordered(role, data), ensure_ascii=False)
    else:
        body = json.dumps(data, ensure_ascii=False, sort_keys=True)
    user = "<input>\n" + body + "\n</input>"
    if role in _USER_TAIL and "count" in fields:
        user += "\n" + _USER_TAIL[role].format(**fields)
    return [SystemMessage(content=system), HumanMessage(content=user)]


def json_mode_instructions(schema: dict[str, Any]) -> str:
    """Appended to the system prompt when the server has no json_schema mode (json_object only)."""
    return ("\nReply with one JSON object only, no prose, valid against this JSON schema:\n"
            + json.dumps(schema, ensure_ascii=False, sort_keys=True))


def repair_messages(original: list[BaseMessage], bad_output: str, problem: str) -> list[BaseMessage]:
    """Ask again after an answer that was not valid JSON for the schema, showing what was wrong."""
    return [*original, AIMessage(content=bad_output[:4000]),
            HumanMessage(content=f"[teachgraph:repair] Your answer could not be used: {problem[:1000]}\n"
                                 "Reply again with the complete answer as one valid JSON object that matches "
                                 "the schema exactly, and nothing else.")]
