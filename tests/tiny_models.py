"""Tiny generative models built inside the tests: a 2-layer Llama and a tokenizer trained here.

Nothing is downloaded. `build_tiny_model(folder)` saves a model and tokenizer that
`AutoModelForCausalLM.from_pretrained(folder)` / `AutoTokenizer.from_pretrained(folder)` load;
with `chat=True` the tokenizer carries a simple chat template. Weights are seeded, so the same
call gives the same model (and the same greedy text) every time.
"""

from __future__ import annotations

from pathlib import Path

SENTENCES = [
    "the cat sat on the mat",
    "dogs bark at night and the cat sleeps",
    "rain falls in spring and the sun is hot in summer",
    "summarise the ticket in one sentence",
    "answer with one json object with the keys category and severity",
    "billing shipping account technical fraud legal",
    "positive negative neutral yes no equivalent not_equivalent",
    "the student model replaces the teacher model when it is good enough",
    '{"category": "billing", "severity": "low", "refund": true}',
    "Read the support ticket and answer . Ticket : my order ORD-12345 never arrived",
]

# A minimal chat template (Jinja, as transformers renders it): role tags, then the assistant cue.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|> {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def train_tokenizer(vocab_size: int = 300):
    """Gives a byte-level BPE `PreTrainedTokenizerFast` trained on SENTENCES, with pad/bos/eos tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    # Byte-level pre-tokenisation makes every string encodable (no <unk>) and decoding exact.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(SENTENCES, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", padding_side="left")


def build_tiny_model(folder: str | Path, chat: bool = False, seed: int = 0, hidden_size: int = 48,
                     layers: int = 2, vocab_size: int = 300) -> Path:
    """Gives the folder where a tiny random-weight Llama causal LM and its tokenizer were saved.

    `chat=True` adds CHAT_TEMPLATE to the tokenizer, so backends take their chat path.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(vocab_size)
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    # Random init gives near-uniform logits; a wider spread makes greedy choices well separated,
    # so batched and one-at-a-time greedy decoding cannot flip on float rounding.
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def direct_label_probs(path, context: str, continuations: dict[str, str], special: bool = True) -> dict[str, float]:
    """Gives label → probability computed straight from the model: for each label, one unpadded
    forward over `context + continuation`, log-softmax, the continuation tokens' log-probs summed,
    then normalised over the labels. `continuations` spells out each label's text as scored
    (delimiter included), so a test states the expected string by hand.
    """
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    ctx = tok(context, add_special_tokens=special)["input_ids"]
    scores = {}
    for label, text in continuations.items():
        whole = tok(context + text, add_special_tokens=special)["input_ids"]
        assert whole[:len(ctx)] == ctx, "the context's tokens should not change when the label follows"
        cont = whole[len(ctx):]
        with torch.inference_mode():
            logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), dim=-1)
        scores[label] = sum(float(logp[len(ctx) - 1 + k, t]) for k, t in enumerate(cont))
    top = max(scores.values())
    z = sum(math.exp(v - top) for v in scores.values())
    return {label: math.exp(v - top) / z for label, v in scores.items()}
