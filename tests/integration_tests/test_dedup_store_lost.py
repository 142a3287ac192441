"""The dedup store follows the branch's accepted data: lost (RUN/chroma deleted between cycles, in a live
run or before a resume) it is rebuilt from the run's accepted examples, so later cycles still drop
duplicates of earlier cycles' data, exactly as an undisturbed run does."""

from __future__ import annotations

import shutil

import pytest

from teachgraph.dedup.store import DedupStore
from teachgraph.domains.base import example_id
from teachgraph.graph import make_context
from teachgraph.run import Run

from .conftest import read_jsonl, tiny

pytestmark = pytest.mark.slow


def _ids(path) -> list[str]:
    return [e["id"] for e in read_jsonl(path)]


@pytest.mark.parametrize("when", ["live", "before_resume"])
def test_a_lost_dedup_store_is_rebuilt_from_the_accepted_data(tmp_path, base_student_ready, when):
    config = tiny(cycles=2, budget=600, review=True)  # the review pause after cycle 2's dedup is the moment to look
    reference_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    with Run.create(make_context(dict(config, run_dir=str(reference_dir)))) as run:
        run.invoke()
        run.invoke(answer={"action": "approve"})    # cycle 1 trained, cycle 2 deduplicated, waiting
    with Run.create(make_context(dict(config, run_dir=str(run_dir)))) as run:
        run.invoke()
        run.invoke(answer={"action": "approve"})
        assert run.waiting_review["cycle"] == 2
        # back to before cycle 2's dedup, on the same branch: redo it with the store lost
        chosen = next(s for s in run.history() if s.next == ("deduplicate",) and s.values["plan"]["cycle"] == 2)
        shutil.rmtree(run_dir / "chroma")
        if when == "live":
            run.invoke(checkpoint=chosen.config)
    if when == "before_resume":
        with Run.open(run_dir) as run:
            run.invoke(checkpoint=chosen.config)
    with Run.open(run_dir) as run:
        branch = run.values()["branch"]
    accepted_2 = run_dir / "branches" / branch / "cycles" / "cycle_002" / "accepted.jsonl"
    cycle_1 = set(_ids(run_dir / "cycles" / "cycle_001" / "accepted.jsonl"))
    assert not cycle_1 & set(_ids(accepted_2)), "cycle 2 accepted duplicates of cycle 1's data"
    assert _ids(accepted_2) == _ids(reference_dir / "cycles" / "cycle_002" / "accepted.jsonl")


def test_the_store_forgets_later_cycles_and_rebuilds_when_it_disagrees(tmp_path):
    store = DedupStore(str(tmp_path / "chroma"))
    rows = {c: [{"prompt": f"add {c} {i}", "skill": "add"} for i in range(5)] for c in (1, 2, 3)}
    for c, examples in rows.items():
        store.add_accepted(examples, c)
    ids = {c: {example_id(e["prompt"]) for e in examples} for c, examples in rows.items()}
    # a fork at cycle 2 of this history: cycles 2 and 3 of the branch it left are forgotten
    assert store.follow({1: rows[1]}, 2) == "rolled_back"
    assert store.train_ids_by_cycle() == {1: ids[1]}
    assert store.follow({1: rows[1]}, 2) == "in_step"
    # another history before the cycle: rebuilt from it
    other = [{"prompt": f"sub {i}", "skill": "sub"} for i in range(3)]
    assert store.follow({1: other}, 2) == "rebuilt"
    assert store.train_ids_by_cycle() == {1: {example_id(e["prompt"]) for e in other}}
