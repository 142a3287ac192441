"""The MATH domain on the shipped sample: splits, loaders, bad rows, scoring, verifier, offline pool."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from teachgraph.domains import get_domain
from teachgraph.domains.loaders import DATA_DIR, DatasetUnavailable
from teachgraph.domains.math import SUBJECTS, MathDomain
from teachgraph.graph.context import ConfigError, make_context


@pytest.fixture(scope="module")
def domain() -> MathDomain:
    return MathDomain(seed=0)


def _ids(examples) -> set[str]:
    return {e["id"] for e in examples}


def test_the_shipped_sample_gives_a_balanced_validation_set_disjoint_from_test_and_pool(domain):
    val, test, pool = domain.load_split("val"), domain.load_split("test"), domain.load_split("train")
    cells = Counter((e["skill"], e["subskill"]) for e in val)
    assert len(cells) == len(SUBJECTS) * 5 and set(cells.values()) == {1}
    assert not _ids(val) & _ids(test) and not _ids(val) & _ids(pool) and not _ids(pool) & _ids(test)
    assert domain.report.skipped == 0 and len(test) >= 35
    assert set(domain.skill_catalog()) == set(SUBJECTS)
    assert all(levels == [f"Level {n}" for n in range(1, 6)] for levels in domain.skill_catalog().values())


def test_the_validation_draw_is_fixed_by_the_seed(domain):
    assert _ids(MathDomain(seed=0).load_split("val")) == _ids(domain.load_split("val"))
    assert _ids(MathDomain(seed=1).load_split("val")) != _ids(domain.load_split("val"))
    bigger = MathDomain(seed=0, val_per_cell=2)
    assert len(bigger.load_split("val")) == 70 and not bigger.load_split("train")


def test_every_gold_solution_scores_as_correct_and_garbage_does_not(domain):
    for e in domain.load_split("val") + domain.load_split("test"):
        assert domain.score(e["answer"], e), e["final_answer"]
        assert domain.score(f"so the result is \\boxed{{{e['final_answer']}}}", e)
        assert not domain.score("I do not know how to solve this problem, sorry about that.", e)


def test_the_student_prompt_is_the_same_zero_shot_prompt_for_every_split(domain):
    for e in domain.load_split("val") + domain.load_split("test") + domain.load_split("train"):
        assert e["prompt"].endswith("Put the final answer in \\boxed{}.")
        assert "\\boxed" not in e["prompt"].rsplit("\n", 1)[0]  # no worked answer leaks into the prompt


def _write(path, rows) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


def test_malformed_rows_are_skipped_counted_and_the_first_ones_reported(tmp_path):
    good = [json.loads(line) for line in (DATA_DIR / "math" / "train.jsonl").read_text().splitlines()]
    _write(tmp_path / "train.jsonl", good[:20] + [
        "{not json",
        {"problem": "What is 1+1?", "level": "Level 1", "type": "Algebra", "solution": "It is 2."},
        {"problem": "What is 2+2?", "level": "Level ?", "type": "Algebra", "solution": "$\\boxed{4}$"},
        ["a", "list"],
    ])
    _write(tmp_path / "test.jsonl", good[20:30])
    d = MathDomain(dataset=str(tmp_path))
    assert d.report.skipped == 4 and d.report.kept == 30
    summary = d.report.summary()
    assert "not JSON" in summary and "no final answer" in summary and "Level ?" in summary


def test_a_local_parquet_folder_loads_like_jsonl(tmp_path, domain):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for split in ("train", "test"):
        rows = [json.loads(line) for line in (DATA_DIR / "math" / f"{split}.jsonl").read_text().splitlines()]
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / f"{split}.parquet")
    again = MathDomain(dataset=str(tmp_path))
    assert _ids(again.load_split("val")) == _ids(domain.load_split("val"))
    assert _ids(again.load_split("test")) == _ids(domain.load_split("test"))


def test_a_hub_dataset_id_that_cannot_be_reached_says_to_pass_a_local_path():
    with pytest.raises(DatasetUnavailable, match="--dataset PATH"):
        MathDomain(dataset="DigitalLearningGmbH/MATH-lighteval")


def test_a_missing_local_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetUnavailable, match="no train.jsonl"):
        MathDomain(dataset=str(tmp_path))


def test_the_verifier_rejects_unboxed_and_self_contradicting_solutions(domain):
    ok = {"prompt": "p", "answer": "Since 3*4=12, $\\boxed{12}$.", "final_answer": "12"}
    assert domain.verify(ok) is None
    assert domain.verify(dict(ok, final_answer="13")) == "answer_mismatch"
    assert domain.verify(dict(ok, answer="Since 3*4=12 the answer is twelve.")) == "no_final_answer"
    assert domain.verify(dict(ok, final_answer="\\frac{24}{2}")) is None  # equivalent forms agree


def test_the_offline_teacher_draws_problems_of_the_requested_subject_and_level(domain):
    pool = domain.load_split("train")
    subject, level = pool[0]["skill"], pool[0]["subskill"]
    drawn = domain.generate(subject, level, None, 5, seed=3)
    assert drawn and all((e["skill"], e["subskill"]) == (subject, level) for e in drawn)
    assert _ids(drawn) <= _ids(pool) and _ids(drawn) == _ids(domain.generate(subject, level, None, 5, seed=3))
    hard = domain.generate(subject, None, "hard", 50, seed=0)
    assert hard and {e["subskill"] for e in hard} <= {"Level 4", "Level 5"}
    assert domain.infer_skill(pool[0]["prompt"]) == (subject, level)


def test_domain_options_are_checked_before_any_work():
    with pytest.raises(ConfigError, match="domain_options.val_per_subject"):
        make_context(domain="math", domain_options={"val_per_subject": 2})
    assert get_domain("math", seed=0, val_per_cell=1).name == "math"


def test_a_non_utf8_row_is_skipped_and_reported_like_any_malformed_row(tmp_path):
    train = (DATA_DIR / "math" / "train.jsonl").read_bytes().splitlines(keepends=True)
    latin1 = json.dumps({"problem": "What is 1+1?", "level": "Level 1", "type": "Algebra",
                         "solution": "It is $\\boxed{2}$, caf\u00e9."}).encode("latin-1") + b"\n"
    (tmp_path / "train.jsonl").write_bytes(b"".join(train[:20]) + latin1.replace(b"\\u00e9", b"\xe9") + b"".join(train[20:40]))
    (tmp_path / "test.jsonl").write_bytes(b"".join(train[40:50]))
    d = MathDomain(dataset=str(tmp_path))
    assert d.report.skipped == 1 and d.report.kept == 50
    assert "train.jsonl:21: not UTF-8 (byte 0xe9" in d.report.summary()


@pytest.mark.parametrize("solution, stated", [
    (r"Half a million and a half: $\boxed{1000000.5}$.", "1000000"),
    (r"So it is $\boxed{\frac{2000001}{2}}$.", "1000000"),
    (r"So it is $\boxed{\sqrt{1000000000001}}$.", "1000000"),
    (r"So it is $\boxed{\sqrt[1000000]{2}}$.", "1"),
    (r"So it is $\boxed{\frac{1}{0}}$.", r"\frac{2}{0}"),
])
def test_the_verifier_rejects_a_generated_example_whose_answers_are_only_close(domain, solution, stated):
    assert domain.verify({"prompt": "p", "answer": solution, "final_answer": stated}) == "answer_mismatch"


@pytest.mark.parametrize("solution, stated", [
    (r"So it is $\boxed{0.\overline{3}}$.", r"\frac13"), (r"So it is $\boxed{1e3}$.", "1000"),
    (r"So it is $\boxed{\sqrt{x^2}}$.", "x"), (r"So it is $\boxed{\sqrt{-1}}$.", "i"),
])
def test_the_verifier_accepts_equivalent_forms_the_scorer_missed(domain, solution, stated):
    assert domain.verify({"prompt": "p", "answer": solution, "final_answer": stated}) is None
