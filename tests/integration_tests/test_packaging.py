"""One import namespace: a regular (non-editable) install puts only `teachgraph` at the top of
site-packages, next to packages that ship generic top-level names (`agents`, as OpenAI's Agents SDK
does, and `graph`), and `teachgraph run` works from a directory holding a stray graph.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .conftest import tiny, write_config

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _folder(package: str, package_dir: dict[str, str]) -> Path:
    """The repository folder setuptools takes a package from (longest mapped prefix)."""
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in package_dir:
            return ROOT / package_dir[prefix] / Path(*parts[cut:])
    return ROOT / Path(*parts)


def test_every_package_folder_is_listed_and_every_listed_package_exists():
    setuptools = _pyproject()
    listed, package_dir = set(setuptools["packages"]), setuptools["package-dir"]
    assert all(p == "teachgraph" or p.startswith("teachgraph.") for p in listed)
    for package in listed:
        assert (_folder(package, package_dir) / "__init__.py").exists(), package
    found = set()
    for prefix in package_dir:
        top = _folder(prefix, package_dir)
        for init in top.rglob("__init__.py"):
            if "data" in init.relative_to(top).parts:
                continue
            rel = init.parent.relative_to(top).parts
            found.add(".".join([prefix, *rel]))
    assert found == listed, f"unlisted: {sorted(found - listed)}; missing: {sorted(listed - found)}"


def _tracked_copy(dest: Path) -> Path:
    """The files git tracks (what a clone holds), so that no build/ left in the checkout leaks in."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=str(ROOT), capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _tiny_package(root: Path, name: str) -> Path:
    """A project that ships a top-level package `name` whose __init__ says who it is."""
    project = root / f"{name}-project"
    (project / name).mkdir(parents=True)
    (project / name / "__init__.py").write_text(f"WHO = 'the other {name}'\n")
    (project / "pyproject.toml").write_text(
        "[build-system]\nrequires = ['setuptools>=68']\nbuild-backend = 'setuptools.build_meta'\n"
        f"[project]\nname = 'other-{name}'\nversion = '1.0'\n[tool.setuptools]\npackages = ['{name}']\n")
    return project


@pytest.mark.slow
def test_a_regular_install_lives_beside_generic_top_level_packages(tmp_path, base_student_ready):
    # A fresh venv whose own site-packages gets the regular installs; the dependencies (torch, langgraph, ...)
    # come from this interpreter's site-packages through a .pth line (which does not activate the editable
    # install of this checkout that lives there).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text("\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")
    for project in (_tracked_copy(tmp_path / "src"), _tiny_package(tmp_path, "agents"), _tiny_package(tmp_path, "graph")):
        out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                              "--target", str(site), "--upgrade", str(project)],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]

    top_level = {p.name for p in site.iterdir() if (p / "__init__.py").exists()}
    assert top_level == {"teachgraph", "agents", "graph"}, top_level

    work = tmp_path / "work"
    work.mkdir()
    (work / "graph.py").write_text("raise SystemExit('the stray graph.py was imported')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = subprocess.run([str(python), "-c", "import agents, graph, teachgraph, teachgraph.graph, teachgraph.teachers;"
                            "print(agents.WHO, '|', graph.WHO if hasattr(graph, 'WHO') else graph.__file__, '|',"
                            " teachgraph.__file__, '|', teachgraph.graph.__file__)"],
                           cwd=str(tmp_path), capture_output=True, text=True, env=env, check=True).stdout
    who_agents, who_graph, teachgraph_file, graph_file = (s.strip() for s in probe.split("|"))
    assert who_agents == "the other agents" and who_graph == "the other graph"
    assert teachgraph_file.startswith(str(site)) and graph_file == str(site / "teachgraph" / "graph" / "__init__.py")

    config = write_config(work / "tiny.yaml", cycles=1, budget=100)
    script = site / "bin" / "teachgraph"  # the installed console script, run by the fresh venv's interpreter
    out = subprocess.run([str(python), str(script), "run", "--config", str(config), "--run-dir", "run", "--quiet"],
                         cwd=str(work), capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert (work / "run" / "summary.json").exists()
    assert tiny()["tiny_layers"] == 1  # the TINY configuration, not the default, ran
