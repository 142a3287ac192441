"""The vision-language student (students/vlm.py) with tiny configs and random weights: train, batched
predict, save and load (full and LoRA), a Llava (chat template) and a PaliGemma (the processor's own
prefix/suffix format), images only through the processor."""

from __future__ import annotations

import pytest
import torch

from teachgraph.domains import get_domain
from teachgraph.students.base import TrainSettings, predict_examples
from teachgraph.students.vlm import TinyVLMConfig, VLMStudent, build_tiny_vlm, is_vlm_dir, load_vlm_student

SMALL = TinyVLMConfig(vision_hidden_size=32, vision_layers=1, hidden_size=64, num_layers=2, num_heads=2,
                      intermediate_size=128)


@pytest.fixture(scope="module")
def data():
    domain = get_domain("vqa", val_per_subskill=2, test_per_subskill=2)
    return domain, domain.generate("color", "1-2 objects", None, 48, seed=1), domain.load_split("val")


def test_the_tiny_vlm_trains_predicts_in_batches_and_reloads_the_same(tmp_path, data):
    domain, train, val = data
    torch.set_num_threads(1)
    model, processor = build_tiny_vlm(SMALL, seed=0)
    student = VLMStudent(model=model, processor=processor, max_new_tokens=4)
    with pytest.raises(TypeError, match="predict_examples"):
        student.predict(["how many circles?"])
    stats = student.train(train, TrainSettings(epochs=6, batch_size=16, learning_rate=3e-3, seed=0))
    assert stats["steps"] == 18 and stats["examples"] == 48
    assert stats["loss_last"] < 0.6 * stats["loss_first"]  # it learns the answer format at least
    one_by_one = [student.predict_examples([e], batch_size=1)[0] for e in val[:6]]
    batched = predict_examples(student, val[:6])  # left-padded batches give the same greedy answers
    assert batched == one_by_one
    student.save(str(tmp_path / "s"))
    assert is_vlm_dir(tmp_path / "s")
    again = load_vlm_student(str(tmp_path / "s"))
    assert again.predict_examples(val[:6]) == batched and again.max_new_tokens == 4
    lora = load_vlm_student(str(tmp_path / "s"), finetune="lora")
    trainable = [n for n, p in lora.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    lora.train(train[:16], TrainSettings(epochs=1, batch_size=8, learning_rate=1e-3))
    lora.save(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    reloaded = load_vlm_student(str(tmp_path / "adapter"), finetune="lora")
    assert reloaded.predict_examples(val[:4]) == lora.predict_examples(val[:4])


def test_training_is_deterministic_for_a_seed(data):
    _, train, val = data
    answers = []
    for _ in range(2):
        model, processor = build_tiny_vlm(SMALL, seed=0)
        student = VLMStudent(model=model, processor=processor, max_new_tokens=3)
        stats = student.train(train[:32], TrainSettings(epochs=1, batch_size=16, seed=5))
        answers.append((stats["loss_last"], student.predict_examples(val[:4])))
    assert answers[0] == answers[1]


def test_a_processor_without_chat_template_paligemma_trains_through_its_suffix_labels(tmp_path, data):
    from transformers import (GemmaConfig, PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor,
                              SiglipImageProcessorPil, SiglipVisionConfig)

    from teachgraph.students.tiny import char_tokenizer

    _, train, val = data
    tokenizer = char_tokenizer(text=True)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    tokenizer.chat_template = None  # PaliGemma's processor has none: its own prefix/suffix format
    image_processor = SiglipImageProcessorPil(size={"height": 32, "width": 32})
    image_processor.image_seq_length = 16
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    torch.manual_seed(0)
    config = PaliGemmaConfig(
        vision_config=SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                         image_size=32, patch_size=8, projection_dim=64),
        text_config=GemmaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                                eos_token_id=tokenizer.eos_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), projection_dim=64)
    PaliGemmaForConditionalGeneration(config).save_pretrained(tmp_path / "pg")
    processor.save_pretrained(tmp_path / "pg")
    student = load_vlm_student(str(tmp_path / "pg"), finetune="lora", max_new_tokens=3)
    assert not student._uses_chat()
    inputs, answer_tokens = student._batch(train[:2])
    assert answer_tokens == sum(len(e["answer"]) + 1 for e in train[:2])  # the answer's characters and eos
    stats = student.train(train[:16], TrainSettings(epochs=1, batch_size=8, learning_rate=1e-3))
    assert stats["steps"] == 2
    assert len(student.predict_examples(val[:3])) == 3
