"""students/: the character tokenizer, the tiny HF student, its training, persistence and LoRA."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace

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


# -- training layout and precision (issue 13) --------------------------------------------------

def mixed_lengths(domain, n_per_skill: int = 12, seed: int = 5) -> list[dict]:
    """Examples of several skills, so sequence lengths vary (short parity prompts, long length ones)."""
    data = []
    for skill in ("parity", "successor", "length", "first_letter", "max_digit"):
        data += domain.generate(skill, None, None, n_per_skill, seed=seed)
    return data


def losses_of(student: HFStudent, data, settings: TrainSettings) -> tuple[list[float], dict]:
    seen: list[float] = []
    stats = student.train(data, settings, progress=lambda step, total, loss: seen.append(loss))
    return seen, stats


def close_weights(a: dict, b: dict, rtol: float, atol: float) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=rtol, atol=atol) for k in a)


def test_packing_computes_fewer_tokens_with_the_same_loss_and_gradients(domain):
    student = tiny(LEARNER, seed=2)
    data = mixed_lengths(domain)
    sequences, starts = student._training_ids(data)
    batch = list(range(len(data)))
    results = {}
    for pack in (False, True):
        student.model.zero_grad(set_to_none=True)
        inputs, real, computed = student._collate(sequences, starts, batch, pack)
        loss = student.model(**inputs, use_cache=False).loss
        loss.backward()
        grads = {n: p.grad.clone() for n, p in student.model.named_parameters()}
        results[pack] = loss.item(), grads, real, computed, inputs["input_ids"].shape[0]
    padded, packed = results[False], results[True]
    assert padded[2] == packed[2] == sum(len(s) for s in sequences)  # every real token, once
    assert padded[4] == len(data) and packed[4] < len(data) / 2  # fewer rows ...
    assert packed[3] - packed[2] < 0.3 * (padded[3] - padded[2])  # ... and much less padding computed
    assert packed[0] == pytest.approx(padded[0], rel=1e-5)
    for name, grad in padded[1].items():
        assert torch.allclose(packed[1][name], grad, rtol=1e-4, atol=1e-6), name


def test_packed_examples_do_not_attend_to_each_other(domain):
    """An example's logits are the same alone and packed beside others (position ids restart, attention
    stays inside the example), and changing its neighbour changes nothing."""
    student = tiny(LEARNER, seed=3)
    data = [{"prompt": "len abcdefgh", "answer": "8"}, {"prompt": "succ 41", "answer": "42"},
            {"prompt": "len xy", "answer": "2"}]
    sequences, starts = student._training_ids(data)
    model = student.model.eval()

    def packed_logits(seqs):
        inputs, _, _ = student._collate(seqs, starts, [0, 1, 2], pack=True)
        with torch.no_grad():
            logits = model(input_ids=inputs["input_ids"], position_ids=inputs["position_ids"], use_cache=False).logits
        return inputs, logits

    def where(inputs, seq):  # (row, column) of a sequence in the packed batch
        for r, row in enumerate(inputs["input_ids"].tolist()):
            for c in range(len(row) - len(seq) + 1):
                if row[c:c + len(seq)] == seq:
                    return r, c
        raise AssertionError(f"{seq} not packed")

    inputs, logits = packed_logits(sequences)
    assert inputs["input_ids"].shape[0] < 3  # some row holds two examples
    for seq in sequences:
        r, c = where(inputs, seq)
        with torch.no_grad():
            alone = model(input_ids=torch.tensor([seq]), use_cache=False).logits[0]
        assert torch.allclose(logits[r, c:c + len(seq)], alone, atol=1e-5)
    # examples 1 and 2 share a row; another example 1 leaves example 2's logits unchanged
    assert where(inputs, sequences[1])[0] == where(inputs, sequences[2])[0]
    changed = [sequences[0], student._training_ids([{"prompt": "succ 77", "answer": "78"}])[0][0], sequences[2]]
    again, other = packed_logits(changed)
    r, c = where(inputs, sequences[2])
    r2, c2 = where(again, sequences[2])
    n = len(sequences[2])
    assert torch.allclose(other[r2, c2:c2 + n], logits[r, c:c + n], atol=1e-6)
    # labels: answers only, never an example's first token (it would be predicted from the neighbour)
    assert int((inputs["labels"] != -100).sum()) == sum(len(s) - st for s, st in zip(sequences, starts))
    for seq in sequences:
        r, c = where(inputs, seq)
        assert inputs["labels"][r, c] == -100 and inputs["position_ids"][r, c] == 0


def test_packed_training_follows_the_padded_loss_curve(domain):
    data = mixed_lengths(domain, n_per_skill=30)
    settings = TrainSettings(epochs=2, batch_size=32, learning_rate=3e-3, seed=7)
    a, b = tiny(LEARNER, seed=4), tiny(LEARNER, seed=4)
    padded, stats_padded = losses_of(a, data, replace(settings, pack=False))
    packed, stats_packed = losses_of(b, data, settings)  # packing is the default
    assert len(padded) == len(packed) == stats_padded["steps"]
    assert packed == pytest.approx(padded, rel=2e-3, abs=2e-4)
    assert packed[-1] < packed[0] - 0.5  # it learned something, so the comparison means something
    assert close_weights(weights(a), weights(b), rtol=1e-2, atol=2e-4)
    assert stats_packed["tokens"] == stats_padded["tokens"]
    real = stats_padded["tokens"]
    assert stats_packed["padded_tokens"] - real < 0.5 * (stats_padded["padded_tokens"] - real)  # padding computed


def test_gradient_accumulation_gives_the_same_loss_curve(domain):
    data = mixed_lengths(domain, n_per_skill=20)
    settings = TrainSettings(epochs=2, batch_size=24, learning_rate=3e-3, seed=2)
    curves, students = {}, {}
    for accum in (1, 3, 24):
        students[accum] = tiny(LEARNER, seed=5)
        curves[accum], stats = losses_of(students[accum], data, replace(settings, grad_accum_steps=accum))
        assert stats["steps"] == 2 * math.ceil(len(data) / 24)  # steps count the effective batch
    assert curves[1][-1] < curves[1][0] - 0.5
    for accum in (3, 24):
        assert curves[accum] == pytest.approx(curves[1], rel=2e-3, abs=2e-4), accum
        assert close_weights(weights(students[accum]), weights(students[1]), rtol=1e-2, atol=2e-4), accum
    with pytest.raises(ValueError, match="grad_accum_steps"):
        TrainSettings(grad_accum_steps=0)


def test_gradient_checkpointing_trains_the_same_and_is_switched_off_after(domain):
    data = mixed_lengths(domain)
    settings = TrainSettings(epochs=2, batch_size=16, learning_rate=3e-3, seed=3)
    plain, checkpointed = tiny(LEARNER, seed=6), tiny(LEARNER, seed=6)
    on_during = []
    reference, _ = losses_of(plain, data, settings)
    curve = []
    checkpointed.train(data, replace(settings, gradient_checkpointing=True),
                       progress=lambda s, t, loss: (curve.append(loss),
                                                    on_during.append(checkpointed.model.is_activation_checkpointing)))
    assert all(on_during) and len(on_during) == len(reference)
    assert not checkpointed.model.is_activation_checkpointing  # predict and save see the usual model
    assert curve == pytest.approx(reference, rel=1e-4, abs=1e-5)
    assert curve[-1] < curve[0] - 0.3


def test_bf16_autocast_trains_with_fp32_master_weights(domain):
    data = mixed_lengths(domain)
    settings = TrainSettings(epochs=2, batch_size=16, learning_rate=3e-3, seed=3)
    fp32, bf16 = tiny(LEARNER, seed=7), tiny(LEARNER, seed=7)
    reference, _ = losses_of(fp32, data, replace(settings, precision="fp32"))
    seen_dtypes = set()
    hook = bf16.model.model.layers[0].mlp.down_proj.register_forward_hook(
        lambda module, args, output: seen_dtypes.add(output.dtype) if module.training else None)
    curve, _ = losses_of(bf16, data, replace(settings, precision="bf16"))
    hook.remove()
    assert seen_dtypes == {torch.bfloat16}  # the forward really ran in bf16 ...
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())  # ... over fp32 weights
    assert bf16.model.config._attn_implementation == fp32.model.config._attn_implementation  # restored
    assert curve != reference  # a different computation
    assert curve == pytest.approx(reference, rel=0.05, abs=0.02)  # of the same thing
    assert curve[-1] < curve[0] - 0.3
    # "auto" is fp32 on the CPU: the same numbers as fp32
    auto = tiny(LEARNER, seed=7)
    assert losses_of(auto, data, settings)[0] == reference
    with pytest.raises(ValueError, match="precision"):
        TrainSettings(precision="fp16")


def test_bf16_weights_are_trained_as_fp32_master_weights(domain):
    """A model handed over in bf16 (as GPUs used to load full fine-tuning) is trained in fp32 copies:
    AdamW on bf16 weights loses small updates."""
    student = tiny(SMALL, seed=0)
    student.model.to(torch.bfloat16)
    stats = student.train(mixed_lengths(domain), TrainSettings(epochs=1, batch_size=16, precision="bf16", seed=0))
    assert stats["steps"] == 4
    assert all(p.dtype == torch.float32 for p in student.model.parameters() if p.requires_grad)
    assert student.predict(["parity 0110"])  # and it still predicts


def test_torch_compile_setting_trains(domain):
    data = mixed_lengths(domain, n_per_skill=4)
    settings = TrainSettings(epochs=3, batch_size=20, learning_rate=3e-3, seed=1)
    eager, compiled = tiny(SMALL, seed=8), tiny(SMALL, seed=8)
    reference, _ = losses_of(eager, data, settings)
    curve, _ = losses_of(compiled, data, replace(settings, compile=True))
    assert curve == pytest.approx(reference, rel=1e-3, abs=1e-4)
    assert not same_weights(weights(compiled), weights(tiny(SMALL, seed=8)))  # the real parameters were trained
    assert close_weights(weights(compiled), weights(eager), rtol=1e-3, atol=1e-5)


def test_lora_trains_with_gradient_checkpointing_and_bf16(base_dir, domain):
    student = load_student(base_dir, finetune="lora", lora=LoraSettings(r=4, alpha=8, dropout=0.0), device="cpu")
    frozen = {n: p.detach().clone() for n, p in student.model.named_parameters() if not p.requires_grad}
    stats = student.train(lora_data(domain), TrainSettings(epochs=3, batch_size=32, learning_rate=1e-2, seed=0,
                                                           gradient_checkpointing=True, precision="bf16"))
    assert stats["loss_last"] < stats["loss_first"] - 0.5
    assert not student.model.is_activation_checkpointing
    after = dict(student.model.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in frozen.items())
    assert all(p.dtype == torch.float32 for p in student.model.parameters() if p.requires_grad)


def test_pack_rows_places_every_sequence_once_within_the_width():
    from teachgraph.students.hf import pack_rows

    rng = __import__("random").Random(0)
    for _ in range(50):
        lengths = [rng.randint(1, 40) for _ in range(rng.randint(1, 80))]
        rows, width = pack_rows(lengths, 2.0)
        assert sorted(k for row in rows for k in row) == list(range(len(lengths)))
        assert width >= max(lengths) and all(sum(lengths[k] for k in row) <= width for row in rows)
        assert len(rows) * width <= 1.5 * sum(lengths) + 2 * max(lengths)  # little padding
        assert len(rows) * width <= len(lengths) * max(lengths)  # never more than one padded row each
    assert pack_rows([5, 3, 2], 2.0) == ([[0, 1, 2]], 10)  # no padding at all
    assert pack_rows([5, 5, 5], 2.0) == ([[0], [1], [2]], 5)  # packing would compute 2 x 10 tokens


# -- the prepared GPU benchmark ----------------------------------------------------------------

def gpu_train_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_train.py"
    spec = importlib.util.spec_from_file_location("gpu_train", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_benchmark_without_cuda_says_so_and_measures_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu.json"
    assert gpu_train_module().main(["--out", str(out)]) == 0
    assert "no CUDA device" in capsys.readouterr().out
    assert not out.exists()


def test_gpu_benchmark_rehearses_its_runs_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    assert gpu_train_module().main(["--device", "cpu", "--size", "tiny", "--steps", "2", "--batch-size", "4",
                                    "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    runs = {r["run"]: r for r in result["runs"]}
    assert set(runs) == {"full, packed", "full, padded", "full, packed, gradient checkpointing", "lora, packed"}
    assert all(r["steps"] == 2 and r["useful_tokens_per_s"] > 0 for r in runs.values())
    assert runs["full, packed"]["padding_share"] < runs["full, padded"]["padding_share"]
    assert runs["full, packed"]["trainable_dtypes"] == ["torch.float32"]
    assert runs["lora, packed"]["trainable_parameters"] < runs["lora, packed"]["parameters"]
    assert runs["lora, packed"]["trainable_dtypes"] == ["torch.float32"]
