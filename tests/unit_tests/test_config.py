"""graph/context.py: validation of the run configuration, config files, fingerprint, context_of."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from teachgraph.graph.context import ENVIRONMENTS, ConfigError, TeachContext, context_of, load_config_file, make_context


def _message(values: dict) -> str:
    with pytest.raises(ConfigError) as info:
        make_context(values)
    return str(info.value)


def test_defaults_are_valid():
    ctx = make_context()
    assert isinstance(ctx, TeachContext)
    assert ctx == TeachContext()
    assert ctx.environment in ENVIRONMENTS


def test_unknown_field_is_named_and_allowed_fields_listed():
    msg = _message({"cycels": 3})
    assert "cycels" in msg
    assert "unknown field" in msg
    for field in ("cycles", "budget", "environment", "dedup_threshold"):
        assert field in msg.split("allowed fields:")[1]


def test_wrong_type_names_the_field():
    msg = _message({"cycles": "many"})
    line = [l for l in msg.splitlines() if "cycles" in l]
    assert line, msg
    assert "integer" in line[0].lower()


def test_out_of_range_value_names_the_field():
    msg = _message({"dedup_threshold": 3.0})
    assert "dedup_threshold" in msg


def test_unknown_environment_shows_allowed_values():
    msg = _message({"environment": "skill-forest"})
    assert "environment" in msg
    for env in ENVIRONMENTS:
        assert env in msg


def test_unknown_domain_is_named():
    msg = _message({"domain": "chess"})
    assert "domain" in msg
    assert "chess" in msg
    assert "synthetic" in msg  # the allowed domains are listed
    # the message names the field once, not "domain: domain: ..."
    assert "domain: domain:" not in msg


def test_budget_smaller_than_cycles_is_rejected():
    msg = _message({"cycles": 10, "budget": 9})
    assert "budget" in msg
    # exactly one example per cycle is allowed
    assert make_context({"cycles": 10, "budget": 10}).budget == 10


def test_several_errors_are_all_reported():
    msg = _message({"cycles": "many", "bogus": 1})
    assert "cycles" in msg and "bogus" in msg


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_overrides_win_and_none_overrides_are_ignored():
    ctx = make_context({"cycles": 3, "budget": 100}, cycles=4, budget=None)
    assert ctx.cycles == 4
    assert ctx.budget == 100


def test_context_is_frozen():
    ctx = make_context()
    with pytest.raises(Exception):
        ctx.cycles = 7  # type: ignore[misc]


def test_load_yaml(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("cycles: 3\nbudget: 90\nenvironment: skill-list\ndomain_options:\n  val_per_subskill: 2\n")
    data = load_config_file(path)
    assert data == {"cycles": 3, "budget": 90, "environment": "skill-list", "domain_options": {"val_per_subskill": 2}}
    ctx = make_context(data)
    assert (ctx.cycles, ctx.budget, ctx.environment) == (3, 90, "skill-list")


def test_load_yml_suffix_and_empty_yaml(tmp_path):
    path = tmp_path / "empty.yml"
    path.write_text("")
    assert load_config_file(path) == {}


def test_load_json(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"cycles": 2, "seed": 5}))
    assert load_config_file(str(path)) == {"cycles": 2, "seed": 5}


@pytest.mark.parametrize("name, text, kind", [
    ("list.yaml", "- 1\n- 2\n", "list"),
    ("scalar.json", "42", "int"),
    ("string.yaml", "just a string\n", "str"),
])
def test_non_mapping_is_rejected(tmp_path, name, text, kind):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert "mapping" in str(info.value)
    assert kind in str(info.value)


def test_missing_file_is_reported(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert "not found" in str(info.value)
    assert str(path) in str(info.value)


def test_unparsable_file_is_reported(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{cycles: ")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert "could not be parsed" in str(info.value)
    assert "broken.json" in str(info.value)


def test_fingerprint_excludes_where_the_run_is_written():
    a = make_context(run_dir="runs/a", cycles=3)
    b = make_context(run_dir="runs/b", cycles=3)
    assert "run_dir" not in a.fingerprint()
    assert a.fingerprint() == b.fingerprint()
    c = make_context(run_dir="runs/a", cycles=4)
    assert a.fingerprint() != c.fingerprint()
    assert a.fingerprint()["cycles"] == 3


def test_fingerprint_is_json_serialisable():
    fp = make_context(domain_options={"val_per_subskill": 3}).fingerprint()
    assert json.loads(json.dumps(fp)) == fp


def test_context_of_none_gives_defaults():
    assert context_of(None) == TeachContext()
    assert context_of(SimpleNamespace(context=None)) == TeachContext()


def test_context_of_dict_is_validated():
    ctx = context_of(SimpleNamespace(context={"cycles": 7, "budget": 70}))
    assert isinstance(ctx, TeachContext)
    assert (ctx.cycles, ctx.budget) == (7, 70)
    with pytest.raises(ConfigError):
        context_of(SimpleNamespace(context={"cycles": "many"}))


def test_context_of_passes_a_context_through():
    ctx = make_context(cycles=2)
    assert context_of(SimpleNamespace(context=ctx)) is ctx


def test_the_teacher_api_key_is_never_written(tmp_path, monkeypatch):
    from teachgraph.graph.context import make_context

    ctx = make_context({"teacher": "llm", "teacher_url": "http://127.0.0.1:1/v1", "teacher_model": "m",
                        "teacher_api_key": "sk-secret"})
    assert "sk-secret" not in str(ctx.public_dump())
    assert ctx.api_key() == "sk-secret"
    monkeypatch.setenv("TEACHGRAPH_TEACHER_API_KEY", "sk-env")
    assert ctx.api_key() == "sk-env"


def test_served_evaluation_needs_lora_and_an_http_url():
    assert "student_eval_url: served evaluation" in _message({"student_eval_url": "http://127.0.0.1:30001",
                                                              "finetune": "full"})
    assert "student_eval_url: '127.0.0.1:30001' is not an http(s) URL" in _message(
        {"student_eval_url": "127.0.0.1:30001", "finetune": "lora"})
    # a pretrained student's default fine-tuning is LoRA: no need to say it
    ctx = make_context(student="/models/some-student", student_eval_url="http://127.0.0.1:30001")
    assert ctx.finetune == "lora" and ctx.student_eval_url == "http://127.0.0.1:30001"
    assert "student_eval_url" not in ctx.fingerprint()  # where evaluation is served does not change the results
