"""Trains Berth's demo model: a small GPT-2-architecture model on the King James Bible (public domain,
from Debian's bible-kjv-text), with its own byte-level BPE vocabulary, on CPU, reproducibly.

Writes a Hugging Face checkpoint (config.json, model.safetensors, tokenizer files,
generation_config.json), the loss log, the loss curve (PNG) and the model card into --out.
Run it through scripts/demo-model/train.sh, which supplies the text and the Python environment.
"""

import argparse
import hashlib
import json
import math
import os
import random
import re
import sys
import time

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast, GenerationConfig

EOS = "<|endoftext|>"

# Everything that decides the result is here, and the model card prints it.
HPARAMS = {
    "seed": 1611,
    "vocab_size": 4096,
    "n_layer": 4,
    "n_embd": 128,
    "n_head": 4,
    "context": 256,
    "batch_size": 4,
    "steps": 640,
    "warmup_steps": 30,
    "lr": 3e-3,
    "min_lr": 1e-4,
    "weight_decay": 0.1,
    "grad_clip": 1.0,
    "held_out_every_nth_chapter": 20,
    "eval_every": 160,
    "eval_blocks": 16,
    "threads": 2,
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def read_chapters(path: str) -> list[str]:
    """The `bible` program's output: "Book N" headings, blank lines, and "  V text" verse lines.
    Returns one string a chapter, one verse a line, verse numbers dropped."""
    chapters: list[list[str]] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            verse = re.match(r"^\s+\d+ (.*)$", line)
            if verse:
                if not chapters:
                    raise ValueError(f"{path}: a verse before any chapter heading")
                chapters[-1].append(verse.group(1).strip())
            elif line.strip():
                chapters.append([])
    if len(chapters) != 1189:
        raise ValueError(f"{path}: expected the 1189 chapters of the KJV, found {len(chapters)}")
    return ["\n".join(verses) for verses in chapters]


def train_tokenizer(texts: list[str], vocab_size: int, out: str) -> GPT2TokenizerFast:
    # ByteLevel pre-tokenization with GPT-2's regex and no prefix space: exactly GPT-2's pre-tokenizer,
    # which llama.cpp runs as tokenizer.ggml.pre = "gpt-2".
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS], show_progress=False)
    tokenizer = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOS, eos_token=EOS, unk_token=EOS)
    tokenizer.model_max_length = HPARAMS["context"]
    tokenizer.save_pretrained(out)
    return tokenizer


def encode(tokenizer: GPT2TokenizerFast, chapters: list[str]) -> torch.Tensor:
    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    ids: list[int] = []
    for chapter in chapters:
        ids.extend(tokenizer.encode(chapter))
        ids.append(eos_id)
    return torch.tensor(ids, dtype=torch.long)


def lr_at(step: int) -> float:
    h = HPARAMS
    if step < h["warmup_steps"]:
        return h["lr"] * (step + 1) / h["warmup_steps"]
    progress = (step - h["warmup_steps"]) / max(1, h["steps"] - h["warmup_steps"])
    return h["min_lr"] + 0.5 * (h["lr"] - h["min_lr"]) * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def held_out_loss(model: GPT2LMHeadModel, tokens: torch.Tensor, max_blocks: int | None) -> tuple[float, int]:
    """Mean next-token loss over consecutive, non-overlapping context-sized blocks of the held-out text."""
    ctx = HPARAMS["context"]
    blocks = tokens[: (len(tokens) // ctx) * ctx].view(-1, ctx)
    if max_blocks is not None:
        blocks = blocks[:max_blocks]
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(blocks), 16):
        batch = blocks[start : start + 16]
        loss = model(input_ids=batch, labels=batch).loss
        predicted = batch.numel() - batch.shape[0]
        total += loss.item() * predicted
        count += predicted
    model.train()
    return total / count, count


def plot(log_rows: list[dict], evals: list[dict], path: str) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is missing (apt-get install python3-matplotlib): no loss curve drawn")
        return ""
    steps = [row["step"] for row in log_rows]
    losses = [row["loss"] for row in log_rows]
    window = 20
    smoothed = [sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1]) for i in range(len(losses))]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(steps, losses, color="#9ab", linewidth=0.7, label="training loss (one batch)")
    ax.plot(steps, smoothed, color="#247", linewidth=1.6, label=f"training loss ({window}-step mean)")
    ax.plot([e["step"] for e in evals], [e["loss"] for e in evals], "o-", color="#c40", label="held-out loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title("Berth demo model: KJV, 4 layers x 128, 4096-token BPE")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", required=True, help="the KJV as printed by `bible -l100000 gen1:1-rev22:21`")
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    parser.add_argument("--steps", type=int, default=HPARAMS["steps"], help="override the step count (for a smoke run)")
    args = parser.parse_args()
    HPARAMS["steps"] = args.steps
    h = HPARAMS

    random.seed(h["seed"])
    torch.manual_seed(h["seed"])
    torch.set_num_threads(h["threads"])
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)

    with open(args.text, "rb") as handle:
        text_sha256 = hashlib.sha256(handle.read()).hexdigest()
    chapters = read_chapters(args.text)
    held_out = [c for i, c in enumerate(chapters) if i % h["held_out_every_nth_chapter"] == h["held_out_every_nth_chapter"] - 1]
    train = [c for i, c in enumerate(chapters) if i % h["held_out_every_nth_chapter"] != h["held_out_every_nth_chapter"] - 1]
    log(f"text sha256 {text_sha256}: {len(chapters)} chapters, {len(train)} for training, {len(held_out)} held out")

    tokenizer = train_tokenizer(train, h["vocab_size"], args.out)
    train_tokens = encode(tokenizer, train)
    held_out_tokens = encode(tokenizer, held_out)
    log(f"tokenizer: {len(tokenizer)} tokens; {len(train_tokens)} training tokens, {len(held_out_tokens)} held-out tokens")

    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=h["context"],
        n_embd=h["n_embd"],
        n_layer=h["n_layer"],
        n_head=h["n_head"],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        # llama.cpp's converter reads the context length of a GPT-2 config from n_ctx.
        n_ctx=h["context"],
    )
    model = GPT2LMHeadModel(config)
    parameters = sum(p.numel() for p in model.parameters())
    log(f"model: {parameters} parameters")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": h["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=h["lr"],
        betas=(0.9, 0.95),
    )
    sampler = torch.Generator().manual_seed(h["seed"])
    ctx = h["context"]
    log_rows: list[dict] = []
    evals: list[dict] = []
    started = time.time()
    model.train()
    for step in range(h["steps"]):
        starts = torch.randint(0, len(train_tokens) - ctx, (h["batch_size"],), generator=sampler)
        batch = torch.stack([train_tokens[s : s + ctx] for s in starts.tolist()])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), h["grad_clip"])
        optimizer.step()
        log_rows.append({"step": step + 1, "loss": round(loss.item(), 5), "lr": lr_at(step), "elapsed_s": round(time.time() - started, 1)})
        if (step + 1) % 10 == 0:
            log(f"step {step + 1}/{h['steps']} loss {loss.item():.4f} lr {lr_at(step):.2e} ({time.time() - started:.0f} s)")
        if (step + 1) % h["eval_every"] == 0 and step + 1 < h["steps"]:
            value, _ = held_out_loss(model, held_out_tokens, h["eval_blocks"])
            evals.append({"step": step + 1, "loss": round(value, 5), "blocks": h["eval_blocks"]})
            log(f"held-out loss {value:.4f} (first {h['eval_blocks']} blocks)")
    train_seconds = time.time() - started

    final_loss, predicted = held_out_loss(model, held_out_tokens, None)
    evals.append({"step": h["steps"], "loss": round(final_loss, 5), "blocks": "all"})
    perplexity = math.exp(final_loss)
    log(f"held-out loss {final_loss:.4f} over {predicted} tokens: perplexity {perplexity:.2f}")
    log(f"training took {train_seconds:.0f} s")

    model.save_pretrained(args.out, safe_serialization=True)
    GenerationConfig(bos_token_id=eos_id, eos_token_id=eos_id).save_pretrained(args.out)

    model.eval()
    samples = {}
    for prompt in ["Hello", "And the LORD said", "In the beginning"]:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        output = model.generate(ids, max_new_tokens=40, do_sample=False, pad_token_id=eos_id)
        samples[prompt] = tokenizer.decode(output[0], skip_special_tokens=False)
        log(f"greedy: {samples[prompt]!r}")

    curve = plot(log_rows, evals, os.path.join(args.out, "loss.png"))
    metrics = {
        "hparams": h,
        "text_sha256": text_sha256,
        "chapters": {"train": len(train), "held_out": len(held_out)},
        "tokens": {"train": len(train_tokens), "held_out": len(held_out_tokens)},
        "parameters": parameters,
        "train_seconds": round(train_seconds),
        "final_train_loss_mean_last_20": round(sum(r["loss"] for r in log_rows[-20:]) / len(log_rows[-20:]), 4),
        "held_out_loss": round(final_loss, 4),
        "held_out_perplexity": round(perplexity, 2),
        "evals": evals,
        "greedy_samples": samples,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "loss_curve": os.path.basename(curve) if curve else None,
    }
    with open(os.path.join(args.out, "training-metrics.json"), "w") as handle:
        json.dump(metrics, handle, indent=2)
        handle.write("\n")
    with open(os.path.join(args.out, "training-log.csv"), "w") as handle:
        handle.write("step,loss,lr,elapsed_s\n")
        for row in log_rows:
            handle.write(f"{row['step']},{row['loss']},{row['lr']:.6g},{row['elapsed_s']}\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
