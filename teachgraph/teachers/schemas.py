"""Typed response schemas of the LLM teacher agents (sent as `response_format` json_schema, and used
to validate what comes back). Kept free of dict-valued fields so that strict structured-output
servers accept them; every name/value pair is a list of small objects instead.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model


class _Schema(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- skill discovery ---------------------------------------------------------------------------
class SkillLabel(_Schema):
    id: str = Field(description="The example's id, copied from the input.")
    skill: str = Field(description="A short snake_case name of the one skill the example needs.")
    reason: str = Field("", max_length=200, description="Why, in one short sentence.")


class SkillLabels(_Schema):
    labels: list[SkillLabel]


class SkillCategory(_Schema):
    name: str = Field(description="A short snake_case category name.")
    description: str = Field("", description="One line: what the category's examples ask for.")
    labels: list[str] = Field(description="The skill labels that belong to this category.")
    subskills: list[str] = Field(default_factory=list, description="2-4 graded subskills, easiest first.")


class SkillCategories(_Schema):
    categories: list[SkillCategory]


class CategoryAssignment(_Schema):
    id: str
    category: str


class CategoryAssignments(_Schema):
    assignments: list[CategoryAssignment]


# -- skill-tree organizer ----------------------------------------------------------------------
class NewSubskill(_Schema):
    name: str
    data: int = Field(ge=0, description="Examples to generate for the new subskill this cycle.")


class AllocationValue(_Schema):
    subskill: str
    value: int = Field(description="The new allocation (kind 'set') or the change to it (kind 'delta').")


class OrganizerAction(_Schema):
    action: Literal["explore", "exploit"]
    new_subskills: list[NewSubskill] = Field(default_factory=list, description="explore only")
    allocation_kind: Literal["set", "delta"] = "set"
    allocations: list[AllocationValue] = Field(default_factory=list, description="exploit only")
    rationale: str = Field("", max_length=400)


def organizer_action_schema(candidates: list[str], existing: list[str], room: int) -> type[BaseModel]:
    """OrganizerAction narrowed to one skill's tree: new subskills only from the candidates (at most `room`
    of them), allocations only for subskills the tree has. A grammar-constrained server (llama.cpp) then
    cannot name a subskill that does not exist, which Qwen2.5-Coder-1.5B did (other skills' names as
    subskills, an exploit of subskills the tree lacks)."""
    def names(values: list[str]) -> Any:
        return Literal[tuple(dict.fromkeys(values))] if values else str  # type: ignore[valid-type]

    new = create_model("NewSubskillOf", __base__=NewSubskill, name=(names(candidates), ...))
    allocation = create_model("AllocationValueOf", __base__=AllocationValue, subskill=(names(existing), ...))
    return create_model("OrganizerActionOf", __base__=OrganizerAction,
                        new_subskills=(list[new], Field(default_factory=list, max_length=max(0, room),
                                                        description="explore only")),
                        allocations=(list[allocation], Field(default_factory=list, description="exploit only")))


# -- planner -----------------------------------------------------------------------------------
class PlanRequest(_Schema):
    skill: str | None = None
    subskill: str | None = None
    difficulty: Literal["easy", "medium", "hard"] | None = None
    count: int = Field(ge=0)
    exemplars: list[str] = Field(default_factory=list)


class PlanResponse(_Schema):
    requests: list[PlanRequest]
    notes: str = Field("", max_length=600)


def _string_branch(bounds: dict[str, Any]) -> Any:
    """A json_schema_extra that puts `bounds` inside the string branch of an optional string's anyOf (a
    grammar converter reads anyOf and ignores keywords beside it)."""
    def edit(schema: dict[str, Any]) -> None:
        for branch in schema.get("anyOf", []):
            if branch.get("type") == "string":
                branch.update(bounds)
    return edit


PLAN_EXEMPLARS_MAX = 2      # exemplars per request a grammar lets the planner write
PLAN_EXEMPLAR_CHARS = 200
PLAN_NOTES_CHARS = 300
_PLANS: dict[tuple[tuple[str, ...], int, bool], type[BaseModel]] = {}


def plan_response_schema(skills: set[str] | None, max_requests: int, exemplars: bool = True) -> type[BaseModel]:
    """PlanResponse bounded for a grammar-constrained server (llama.cpp): skills only from those the plan may
    name, at most `max_requests` requests, short exemplar lists (none where the planner sees no errors to
    copy them from: `exemplars=False`) and notes. Qwen2.5-Coder-1.5B's skill-tree plan (12 subskills,
    invented exemplars) ran past a 384-token cap three times and fell back. The bounds are for the grammar
    only (`json_schema_extra`), so a server without one is validated and repaired (`normalize_plan`) as before."""
    key = (tuple(sorted(skills)) if skills else (), int(max_requests), bool(exemplars))
    if key not in _PLANS:
        skill_bound = {"enum": list(key[0])} if key[0] else {}
        request = create_model(
            "PlanRequestOf", __base__=PlanRequest,
            skill=(str | None, Field(None, json_schema_extra=_string_branch(skill_bound))),
            subskill=(str | None, Field(None, json_schema_extra=_string_branch({"maxLength": 80}))),
            exemplars=(list[str], Field(default_factory=list, json_schema_extra={
                "maxItems": PLAN_EXEMPLARS_MAX if key[2] else 0, "items": {"type": "string", "maxLength": PLAN_EXEMPLAR_CHARS}})))
        _PLANS[key] = create_model(
            "PlanResponseOf", __base__=PlanResponse,
            requests=(list[request], Field(json_schema_extra={"maxItems": max(1, key[1])})),
            notes=(str, Field("", max_length=600, json_schema_extra={"maxLength": PLAN_NOTES_CHARS})))
    return _PLANS[key]


# -- data generator ----------------------------------------------------------------------------
class GeneratedExample(_Schema):
    # bounded, so that a grammar-constrained server (llama.cpp) cannot loop inside one string
    prompt: str = Field(max_length=600)
    answer: str = Field(max_length=300)


class GeneratedBatch(_Schema):
    examples: list[GeneratedExample]


_BATCHES: dict[tuple[type[BaseModel] | None, int | None], type[BaseModel]] = {}


def generated_batch_of(item: type[BaseModel] | None, count: int | None = None) -> type[BaseModel]:
    """The generator's response schema for a domain: {"examples": [item, ...]}, where the item is the
    domain's own `generation_schema` (math: problem/solution/final_answer; code: statement, starter code,
    tests, reference solution), or the generic prompt/answer pair. With a count, the list has at most that
    many items (maxItems): a grammar-constrained server then closes the list where the request ends
    instead of writing examples until its token limit cuts the answer off."""
    if item is None and count is None:
        return GeneratedBatch
    key = (item, count)
    if key not in _BATCHES:
        element = item or GeneratedExample
        # maxItems goes to the server's grammar only: a longer list from a server without one is still
        # accepted and truncated by the generator (counted as truncated_batches), not repaired
        field = Field(json_schema_extra={"maxItems": count}) if count is not None else Field()
        name = f"Generated{element.__name__}Batch" + (f"Of{count}" if count is not None else "")
        _BATCHES[key] = create_model(name, __base__=_Schema, examples=(list[element], field))
    return _BATCHES[key]
