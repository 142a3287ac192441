"""Tiny students built from a config: a character tokenizer and a small Llama with random weights."""

from __future__ import annotations

import string
from dataclasses import dataclass

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"]
CHARS = [c for c in string.printable if c not in "\t\n\r\x0b\x0c"]
TEXT_CHARS = CHARS + ["\n", "\t"]  # text domains (math solutions, programs) need line breaks

# A chat template in the usual shape (role markers, one end-of-turn token) for tiny students of text
# domains, so that they go through the same chat-template code path as instruction-tuned models.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<eos>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@dataclass(frozen=True)
class TinyConfig:
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    max_length: int = 64
    text: bool = False  # a text-domain student: line breaks in the vocabulary and a chat template


def char_tokenizer(text: bool = False) -> PreTrainedTokenizerFast:
    """One token per printable ASCII character, wrapped so `AutoTokenizer.from_pretrained` reloads it."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + (TEXT_CHARS if text else CHARS))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<bos>",
                                        eos_token="<eos>", unk_token="<unk>")
    if text:
        tokenizer.chat_template = TINY_CHAT_TEMPLATE
    return tokenizer


def build_tiny_student(config: TinyConfig, seed: int) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    tokenizer = char_tokenizer(text=config.text)
    torch.manual_seed(seed)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads, max_position_embeddings=config.max_length,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(model_config), tokenizer
