"""teachgraph.reporting.report: report.md, data_card.md and PNG plots from real (TINY) run directories, the
comparison of several runs, the errors for directories that are not finished runs, the markdown-only
fallback without matplotlib, and the `teachgraph report` subcommand."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SINGLE_PLOTS = ("learning_curve.png", "skill_heatmap.png", "data_per_skill.png", "skill_tree.png")


def _config(**overrides):
    values = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    values.update(overrides)
    return values


def _finished_run(run_dir: Path, **overrides) -> Path:
    """A real run (the run layer the CLI uses), invoked to the end."""
    from teachgraph.graph import make_context
    from teachgraph.run import Run

    with Run.create(make_context(_config(run_dir=str(run_dir), **overrides))) as run:
        out = run.invoke()
    assert "test_accuracy" in out["result"]
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    return {"tree": _finished_run(root / "tree"),  # skill-tree, 2 cycles
            "list": _finished_run(root / "list", environment="skill-list", cycles=1, seed=1)}


def _assert_png(path: Path) -> None:
    assert path.exists(), path
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_SIGNATURE), path


def _accepted_total(run_dir: Path) -> int:
    return sum(sum(1 for line in p.read_text().splitlines() if line.strip())
               for p in sorted(run_dir.glob("cycles/cycle_*/accepted.jsonl")))


@pytest.mark.slow
def test_single_run_report(runs, tmp_path):
    from teachgraph.reporting.report import write_report

    out = tmp_path / "out"
    report = write_report([str(runs["tree"])], str(out))
    assert report == out / "report.md"
    for name in SINGLE_PLOTS:
        _assert_png(out / name)
        assert f"]({name})" in report.read_text()
    summary = json.loads((runs["tree"] / "summary.json").read_text())
    text = report.read_text()
    assert f"Best cycle: {summary['best_cycle']}" in text
    assert f"{summary['test_accuracy']:.1%}" in text
    assert "| 2 |" in text or "**2** (best)" in text  # every cycle has a row
    card = (out / "data_card.md").read_text()
    assert f"**{_accepted_total(runs['tree'])} accepted**" in card
    assert "offline-program" in card  # by generator
    assert "## Drops by reason" in card and "## Sample of accepted examples" in card


@pytest.mark.slow
def test_default_out_dir_is_inside_the_run(runs):
    from teachgraph.reporting.report import write_report

    report = write_report([str(runs["list"])])
    assert report == runs["list"] / "report" / "report.md"
    for name in SINGLE_PLOTS:  # skill-list has no skill_tree.json: the tree comes from skills.json
        _assert_png(report.parent / name)


@pytest.mark.slow
def test_several_runs_compared(runs, tmp_path):
    from teachgraph.reporting.report import write_report

    out = tmp_path / "cmp"
    report = write_report([str(runs["tree"]), str(runs["list"])], str(out))
    _assert_png(out / "compare.png")
    text = report.read_text()
    assert "![learning curves](compare.png)" in text
    for label in ("tree", "list"):
        assert f"[{label}]({label}/report.md)" in text
        assert (out / label / "report.md").exists() and (out / label / "data_card.md").exists()
        _assert_png(out / label / "learning_curve.png")


@pytest.mark.slow
def test_skill_tree_drawing_returns_a_figure(runs):
    from teachgraph.reporting.report import draw_skill_tree, load_run, tree_of

    forest = tree_of(load_run(runs["tree"]))
    assert forest and forest["skills"]
    fig = draw_skill_tree(forest)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert any("alloc" in t and "acc" in t for t in labels)
    assert all(any(t.startswith(skill) for t in labels) for skill in forest["skills"])
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_not_a_run_directory(tmp_path):
    from teachgraph.reporting.report import ReportError, write_report

    with pytest.raises(ReportError, match="not a teachgraph run directory"):
        write_report([str(tmp_path)])
    with pytest.raises(ValueError, match="does not exist"):  # ReportError is a ValueError
        write_report([str(tmp_path / "missing")])
    assert not (tmp_path / "report").exists()


def test_unfinished_runs(tmp_path):
    from teachgraph.graph import make_context
    from teachgraph.reporting.report import ReportError, write_report

    run = tmp_path / "fresh"
    run.mkdir()
    config = {"run_id": "fresh", "config": make_context(_config(run_dir=str(run))).model_dump()}
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ReportError, match="no finished cycle"):
        write_report([str(run)])
    (run / "cycles" / "cycle_000").mkdir(parents=True)
    (run / "cycles" / "cycle_000" / "eval_val.jsonl").write_text('{"id": "x", "correct": false}\n')
    with pytest.raises(ReportError, match="has not finished.*no summary.json"):
        write_report([str(run)])
    (run / "summary.json").write_text(json.dumps({"cycles": []}))
    with pytest.raises(ReportError, match="no finished cycle"):
        write_report([str(run)])
    (run / "summary.json").write_text("{not json")
    with pytest.raises(ReportError, match="unreadable"):
        write_report([str(run)])


@pytest.mark.slow
def test_one_bad_run_among_good_ones_writes_nothing(runs, tmp_path):
    from teachgraph.reporting.report import ReportError, write_report

    with pytest.raises(ReportError, match="not a teachgraph run directory"):
        write_report([str(runs["tree"]), str(tmp_path)], str(tmp_path / "none"))
    assert not (tmp_path / "none").exists()


@pytest.mark.slow
def test_markdown_only_without_matplotlib(runs, tmp_path, monkeypatch):
    from teachgraph.reporting.report import write_report

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    out = tmp_path / "md"
    report = write_report([str(runs["tree"])], str(out))
    text = report.read_text()
    assert "Plots were not drawn: matplotlib could not be imported" in text
    assert "Best cycle:" in text
    assert (out / "data_card.md").exists()
    assert not list(out.glob("*.png"))


@pytest.mark.slow
def test_report_subcommand(runs, tmp_path, capsys):
    from teachgraph.cli import main

    assert main(["report", str(runs["tree"]), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "report.md").exists()
    assert str(tmp_path / "cli" / "report.md") in capsys.readouterr().out

    assert main(["report", str(tmp_path / "cli")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no config.json" in err and "Traceback" not in err


@pytest.mark.slow
def test_run_writes_its_report(tmp_path):
    """`teachgraph run` (cli.execute) ends by writing RUN_DIR/report/report.md."""
    from teachgraph.cli import execute
    from teachgraph.graph import make_context
    from teachgraph.run import Run

    with Run.create(make_context(_config(run_dir=str(tmp_path / "run"), cycles=1, budget=300))) as run:
        values = execute(run, quiet=True)
    assert "test_accuracy" in values["result"]
    report = tmp_path / "run" / "report" / "report.md"
    assert report.exists() and "Best cycle:" in report.read_text()
