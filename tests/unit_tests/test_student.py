"""students/: the character tokenizer, the tiny HF student, its training, persistence and LoRA."""

from __future__ import annotations

import json
import os

import pytest
import torch

from teachgraph.domains import SyntheticDomain
from teachgraph.students.base import TrainSettings
from teachgraph.students.hf import STUDENT_META, HFStudent, LoraSettings, load_student
from teachgraph.students.tiny import CHARS, SPECIAL_TOKENS, TinyConfig, build_tiny_student, char_tokenizer

# The configuration the brief names: fast enough for determinism, persistence and LoRA checks.
SMALL = TinyConfig(hidden_size=32, num_layers=1, num_heads=1, intermediate_size=64)
# One and two-layer 32-wide models stay on the "answer is some letter" plateau (loss ~ln 12 / 2) for
# many epochs on some seeds; a 2-layer, 64-wide model learns to copy the first letter reliably within 3 epochs.
LEARNER = TinyConfig(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and a busy 2-core machine makes two threads much slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def domain() -> SyntheticDomain:
    return SyntheticDomain(seed=0, val_per_subskill=4, test_per_subskill=4)


def tiny(config: TinyConfig = SMALL, seed: int = 0) -> HFStudent:
    model, tokenizer = build_tiny_student(config, seed=seed)
    return HFStudent(model=model, tokenizer=tokenizer, max_new_tokens=6, meta={"note": "test"})


def accuracy(student: HFStudent, domain, examples) -> float:
    predictions = student.predict([e["prompt"] for e in examples])
    return sum(domain.score(p, e) for p, e in zip(predictions, examples)) / len(examples)


def weights(student: HFStudent) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in student.model.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def first_letter(domain):
    train = domain.generate("first_letter", "4 letters", None, 2000, seed=1)
    seen = {e["prompt"] for e in train}
    held_out = [e for e in domain.generate("first_letter", "4 letters", None, 250, seed=99) if e["prompt"] not in seen]
    return train, held_out


@pytest.fixture(scope="module")
def learned(domain, first_letter):
    """A student trained on one easy skill, with its accuracy before and after and its train stats."""
    train, held_out = first_letter
    student = tiny(LEARNER, seed=1)
    before = accuracy(student, domain, held_out)
    stats = student.train(train, TrainSettings(epochs=3, batch_size=32, learning_rate=3e-3, seed=1))
    after = accuracy(student, domain, held_out)
    return student, before, after, stats


# -- tokenizer --------------------------------------------------------------------------------

def test_char_tokenizer_round_trips_printable_text(tmp_path):
    tok = char_tokenizer()
    assert len(tok) == len(SPECIAL_TOKENS) + len(CHARS)
    texts = ["".join(CHARS), "max 4821", "larger 12 34", "a  b ", "Hello, World! {x: [1, 2]} ~`"]
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert len(ids) == len(text)  # one token per character
        assert tok.decode(ids) == text
        assert tok.unk_token_id not in ids
    specials = {tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id}
    assert len(specials) == 4 and max(specials) < len(SPECIAL_TOKENS)
    assert tok("é", add_special_tokens=False)["input_ids"] == [tok.unk_token_id]
    # saved and reloaded by AutoTokenizer, it encodes the same
    from transformers import AutoTokenizer

    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    for text in texts:
        assert again(text, add_special_tokens=False)["input_ids"] == tok(text, add_special_tokens=False)["input_ids"]
    assert again.eos_token_id == tok.eos_token_id and again.pad_token_id == tok.pad_token_id


# -- learning ---------------------------------------------------------------------------------

def test_training_on_an_easy_skill_raises_accuracy_and_lowers_loss(learned):
    student, before, after, stats = learned
    assert before <= 0.15  # a random model hardly ever answers right
    assert after >= 0.6, (before, after, stats)
    assert after >= before + 0.45
    assert stats["loss_last"] < stats["loss_first"] - 2.0
    assert stats["examples"] == 2000
    assert stats["steps"] == 3 * 63  # ceil(2000 / 32) steps per epoch
    assert stats["tokens"] > 0


def test_training_reports_progress_and_handles_no_data(domain):
    student = tiny()
    calls = []
    data = domain.generate("parity", None, None, 50, seed=0)
    stats = student.train(data, TrainSettings(epochs=2, batch_size=16, seed=0), progress=lambda *a: calls.append(a))
    assert stats["steps"] == 8
    assert [c[0] for c in calls] == list(range(1, 9))
    assert all(c[1] == 8 for c in calls)
    assert all(isinstance(c[2], float) for c in calls)
    before = weights(student)
    assert student.train([], TrainSettings())["steps"] == 0
    assert same_weights(before, weights(student))


def test_fractional_epochs():
    # 100 examples, batch 10, 0.5 epochs -> 5 steps
    domain = SyntheticDomain(seed=0)
    stats = tiny().train(domain.generate("length", None, None, 100, seed=0),
                         TrainSettings(epochs=0.5, batch_size=10, seed=0))
    assert stats["steps"] == 5


def test_training_is_deterministic(domain):
    data = domain.generate("successor", None, None, 200, seed=3)
    settings = TrainSettings(epochs=1, batch_size=32, learning_rate=3e-3, seed=4)
    a, b, c = tiny(seed=0), tiny(seed=0), tiny(seed=0)
    assert same_weights(weights(a), weights(b))  # the same seed builds the same model
    assert not same_weights(weights(a), weights(tiny(seed=1)))
    start = weights(a)
    stats_a, stats_b = a.train(data, settings), b.train(data, settings)
    assert not same_weights(start, weights(a))
    assert same_weights(weights(a), weights(b))
    assert stats_a["loss_first"] == stats_b["loss_first"] and stats_a["loss_last"] == stats_b["loss_last"]
    c.train(data, TrainSettings(epochs=1, batch_size=32, learning_rate=3e-3, seed=5))  # another data order
    assert not same_weights(weights(a), weights(c))


def test_batched_predict_equals_one_by_one(learned, domain):
    student = learned[0]
    prompts = [e["prompt"] for e in domain.load_split("val")[::5]]  # every skill, prompts of many lengths
    assert len({len(p) for p in prompts}) > 5
    batched = student.predict(prompts, batch_size=7)
    single = [student.predict([p])[0] for p in prompts]
    assert batched == single
    assert student.predict(prompts, batch_size=1000) == single
    assert len(set(single)) > 3  # the answers are not all the same, so a mix-up would show


def test_predict_respects_max_new_tokens(learned):
    student = learned[0]
    short = HFStudent(model=student.model, tokenizer=student.tokenizer, max_new_tokens=1)
    assert all(len(a) <= 1 for a in short.predict(["len abcdefgh", "succ 99999", "max 12"]))


def test_predict_of_no_prompts_is_empty(learned):
    """Like `train([])`, `predict([])` has nothing to do (an empty split must not crash evaluation)."""
    assert learned[0].predict([]) == []


# -- persistence ------------------------------------------------------------------------------

def test_save_and_load_round_trips_predictions(learned, domain, tmp_path):
    student = learned[0]
    student.save(str(tmp_path / "s"))
    meta = json.loads((tmp_path / "s" / STUDENT_META).read_text())
    assert meta["max_new_tokens"] == 6 and meta["prompt_format"] == "plain" and meta["finetune"] == "full"
    loaded = load_student(str(tmp_path / "s"), device="cpu")
    assert loaded.max_new_tokens == 6 and loaded.prompt_format == "plain" and loaded.finetune == "full"
    assert loaded.meta.get("note") == "test"
    prompts = [e["prompt"] for e in domain.load_split("test")]
    assert loaded.predict(prompts) == student.predict(prompts)
    original = weights(student)
    assert same_weights({k: v for k, v in original.items()}, weights(loaded))
    assert all(p.requires_grad for p in loaded.model.parameters())  # full fine-tuning trains everything


# -- LoRA -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, domain):
    """A saved small full student that has learned something (parity), the base of the LoRA tests."""
    student = tiny()
    student.train(domain.generate("parity", None, None, 400, seed=0), TrainSettings(epochs=2, batch_size=32, seed=0))
    path = tmp_path_factory.mktemp("lora") / "base"
    student.save(str(path))
    return str(path)


def lora_data(domain):
    return domain.generate("first_letter", None, None, 300, seed=2)


def test_lora_trains_only_adapter_parameters(base_dir, domain):
    student = load_student(base_dir, finetune="lora", lora=LoraSettings(r=4, alpha=8, dropout=0.0), device="cpu")
    assert student.finetune == "lora"
    trainable = [n for n, p in student.model.named_parameters() if p.requires_grad]
    frozen = [n for n, p in student.model.named_parameters() if not p.requires_grad]
    assert trainable and frozen
    assert all("lora_" in n for n in trainable)
    assert not any("lora_" in n for n in frozen)
    base_before = {n: p.detach().clone() for n, p in student.model.named_parameters() if not p.requires_grad}
    lora_before = {n: p.detach().clone() for n, p in student.model.named_parameters() if p.requires_grad}
    prompts = [e["prompt"] for e in domain.load_split("val") if e["skill"] == "first_letter"]
    predictions_before = student.predict(prompts)
    stats = student.train(lora_data(domain), TrainSettings(epochs=3, batch_size=32, learning_rate=1e-2, seed=0))
    assert stats["loss_last"] < stats["loss_first"] - 0.5
    after = dict(student.model.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in base_before.items())  # the base is untouched
    assert any(not torch.equal(after[n], v) for n, v in lora_before.items())
    assert student.predict(prompts) != predictions_before


@pytest.fixture(scope="module")
def adapter(base_dir, domain, tmp_path_factory):
    student = load_student(base_dir, finetune="lora", lora=LoraSettings(r=4, alpha=8, dropout=0.0), device="cpu")
    student.train(lora_data(domain), TrainSettings(epochs=2, batch_size=32, learning_rate=1e-2, seed=0))
    path = tmp_path_factory.mktemp("adapter") / "cycle_1"
    student.save(str(path))
    return student, str(path)


def test_lora_save_writes_a_standard_peft_adapter(adapter, base_dir):
    _, path = adapter
    files = set(os.listdir(path))
    assert "adapter_config.json" in files
    assert {"adapter_model.safetensors", "adapter_model.bin"} & files
    assert "model.safetensors" not in files  # only the adapter, not a copy of the base
    config = json.loads(open(os.path.join(path, "adapter_config.json")).read())
    assert config["base_model_name_or_path"] == base_dir
    assert config["peft_type"] == "LORA" and config["r"] == 4 and config["lora_alpha"] == 8
    assert json.loads(open(os.path.join(path, STUDENT_META)).read())["finetune"] == "lora"
    # peft itself reads it back
    from peft import PeftConfig

    assert PeftConfig.from_pretrained(path).base_model_name_or_path == base_dir


def test_lora_adapter_reloads_for_continued_training(adapter, domain):
    trained, path = adapter
    prompts = [e["prompt"] for e in domain.load_split("val")]
    again = load_student(path, finetune="lora", device="cpu")
    assert again.predict(prompts) == trained.predict(prompts)
    trainable = {n: p.detach().clone() for n, p in again.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    # it continues the saved adapter (r=4), it does not start a fresh default one
    assert all(p.shape[0] == 4 for n, p in trainable.items() if "lora_A" in n)
    again.train(lora_data(domain)[:64], TrainSettings(epochs=1, batch_size=32, learning_rate=1e-2, seed=1))
    after = dict(again.model.named_parameters())
    assert any(not torch.equal(after[n], v) for n, v in trainable.items())


def test_lora_adapter_loads_merged_for_full_finetuning(adapter, domain):
    trained, path = adapter
    prompts = [e["prompt"] for e in domain.load_split("val")]
    merged = load_student(path, finetune="full", device="cpu")
    assert merged.finetune == "full"
    assert not any("lora_" in n for n, _ in merged.model.named_parameters())
    assert merged.predict(prompts) == trained.predict(prompts)
    # full fine-tuning of the merged model must train its weights
    assert all(p.requires_grad for p in merged.model.parameters()), \
        "the merged model's parameters are left frozen, so full fine-tuning has nothing to train"
    before = weights(merged)
    merged.train(lora_data(domain)[:64], TrainSettings(epochs=1, batch_size=32, seed=0))
    assert not same_weights(before, weights(merged))
