"""students/pretrain.py: the cached base student is keyed by what decides its weights, code included, so a
cache built by other code (or libraries, or another CPU family) is never reused."""

from __future__ import annotations

import shutil

from teachgraph.domains import get_domain
from teachgraph.students import hf, pretrain, tiny
from teachgraph.students.tiny import TinyConfig


def _key() -> str:
    return pretrain.base_student_key(get_domain("synthetic"), TinyConfig(), 300, 1.0)


def test_the_key_is_stable_for_the_same_code_and_settings():
    assert _key() == _key()
    assert pretrain.base_student_key(get_domain("synthetic"), TinyConfig(), 301, 1.0) != _key()


def test_editing_the_code_that_builds_the_base_student_changes_its_key(tmp_path, monkeypatch):
    before = _key()
    for module in (hf, tiny, pretrain):  # the training loop, the model, the builder itself
        edited = tmp_path / f"edited_{module.__name__.rsplit('.', 1)[-1]}.py"
        shutil.copy(module.__file__, edited)
        edited.write_text(edited.read_text(encoding="utf-8") + "\n# a change\n", encoding="utf-8")
        with monkeypatch.context() as patch:
            patch.setattr(module, "__file__", str(edited))
            assert _key() != before, module.__name__
        assert _key() == before


def test_another_cpu_or_torch_gives_another_key(monkeypatch):
    before = _key()
    monkeypatch.setattr(pretrain, "cpu_model", lambda: "AMD EPYC 7B13")
    assert _key() != before
    monkeypatch.undo()
    import torch

    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert _key() != before
