"""Students of text domains: chat templates, the pretrained-student defaults, loading errors."""

from __future__ import annotations

import pytest
import torch

from teachgraph.graph.context import PRETRAINED_STUDENT_DEFAULTS, make_context
from teachgraph.students import TrainSettings, load_student
from teachgraph.students.hf import HFStudent, StudentUnavailable
from teachgraph.students.tiny import TinyConfig, build_tiny_student


@pytest.fixture
def chat_student(tmp_path) -> str:
    model, tokenizer = build_tiny_student(TinyConfig(hidden_size=32, num_layers=1, num_heads=1,
                                                     intermediate_size=64, max_length=512, text=True), seed=0)
    path = tmp_path / "chat-student"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)  # a model folder of its own: no teachgraph metadata
    return str(path)


def test_a_model_with_a_chat_template_is_prompted_through_it(chat_student):
    student = load_student(chat_student, device="cpu", max_new_tokens=4)
    assert student.prompt_format == "chat"
    ids = student._prompt_ids(["What is 2+2?\nThink."])[0]
    text = student.tokenizer.decode(ids)
    assert text == "<|user|>\nWhat is 2+2?\nThink.<eos>\n<|assistant|>\n"


def test_chat_training_puts_the_loss_on_the_assistant_turn_only(chat_student):
    student = load_student(chat_student, device="cpu")
    sequences, starts = student._training_ids([{"prompt": "Q?", "answer": "A!"}])
    text = student.tokenizer.decode(sequences[0])
    assert text == "<|user|>\nQ?<eos>\n<|assistant|>\nA!<eos>\n"
    assert student.tokenizer.decode(sequences[0][starts[0]:]) == "A!<eos>\n"


def test_a_chat_student_learns_a_multiline_answer_and_stops_at_the_end_of_its_turn(chat_student):
    student = load_student(chat_student, device="cpu", max_new_tokens=24)
    data = [{"prompt": "Say the rule.", "answer": "one\ntwo\n\\boxed{3}"}] * 64
    stats = student.train(data, TrainSettings(epochs=60, batch_size=64, learning_rate=1e-2, seed=0))
    assert stats["loss_last"] < stats["loss_first"] / 4
    assert student.predict(["Say the rule."]) == ["one\ntwo\n\\boxed{3}"]


def test_a_tiny_text_students_saves_and_reloads_its_template(chat_student, tmp_path):
    student = load_student(chat_student, device="cpu", max_new_tokens=5)
    student.save(str(tmp_path / "saved"))
    again = load_student(str(tmp_path / "saved"), device="cpu")
    assert again.prompt_format == "chat" and again.max_new_tokens == 5
    assert again._prompt_ids(["x"]) == student._prompt_ids(["x"])


def test_lora_on_a_chat_student_saves_a_standard_peft_adapter(chat_student, tmp_path):
    student = load_student(chat_student, device="cpu", finetune="lora")
    student.train([{"prompt": "Q", "answer": "A"}] * 8, TrainSettings(epochs=1, batch_size=8, seed=0))
    student.save(str(tmp_path / "adapter"))
    config = (tmp_path / "adapter" / "adapter_config.json").read_text()
    assert '"r": 16' in config and '"lora_alpha": 32' in config
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    reloaded = load_student(str(tmp_path / "adapter"), device="cpu", finetune="lora")
    assert reloaded.prompt_format == "chat"


def test_pretrained_students_get_the_papers_training_defaults_unless_set():
    tiny = make_context()
    assert (tiny.finetune, tiny.learning_rate, tiny.epochs) == ("full", 2e-3, 4.0)
    real = make_context(student="google/gemma-2-2b-it")
    assert {k: getattr(real, k) for k in PRETRAINED_STUDENT_DEFAULTS} == PRETRAINED_STUDENT_DEFAULTS
    assert (real.lora_r, real.lora_alpha, real.lora_dropout) == (16, 32, 0.05)
    chosen = make_context(student="google/gemma-2-2b-it", learning_rate=5e-5, finetune="full")
    assert (chosen.learning_rate, chosen.finetune, chosen.epochs) == (5e-5, "full", 3.0)
    assert make_context(chosen.public_dump()) == chosen  # config.json round trip (resume)


def test_a_hub_student_that_cannot_be_reached_offline_says_to_pass_a_local_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(StudentUnavailable, match="local path"):
        load_student("nobody-here/no-such-model-xyz", device="cpu")


def test_generation_stops_at_any_of_the_models_end_ids(chat_student):
    student = load_student(chat_student, device="cpu")
    student.model.generation_config.eos_token_id = [student.tokenizer.convert_tokens_to_ids("!"), 2]
    assert set(student._stop_ids()) == {student.tokenizer.eos_token_id, student.tokenizer.convert_tokens_to_ids("!")}
    assert isinstance(student, HFStudent) and torch.is_tensor(next(student.model.parameters()))
