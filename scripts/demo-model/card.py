"""Writes the demo model's card (README.md) from what training recorded (training-metrics.json).

Usage: card.py CHECKPOINT_DIR
"""
import json
import math
import os
import sys

out = sys.argv[1]
with open(os.path.join(out, "training-metrics.json"), encoding="utf-8") as handle:
    m = json.load(handle)
h = m["hparams"]
size = os.path.getsize(os.path.join(out, "model.safetensors"))
tokens_seen = h["steps"] * h["batch_size"] * h["context"]
evals = "\n".join(
    f"| {e['step']} | {e['loss']:.3f} | {math.exp(e['loss']):.1f} | {'all' if e['blocks'] == 'all' else e['blocks']} |"
    for e in m["evals"]
)
samples = "\n".join(f"- `{prompt}` → {json.dumps(text)}" for prompt, text in m["greedy_samples"].items())

card = f"""---
license: other
license_name: public-domain-text
language: en
library_name: transformers
pipeline_tag: text-generation
tags: [gpt2, berth, demo]
---

# Berth demo model: a small GPT-2 trained on the King James Bible

The model `npm start` serves, so that a new user's first request gets English back instead of a
random-weight model's gibberish. It is tiny and was trained for {m['train_seconds'] // 60} minutes on two
shared CPU cores: it writes words and phrases of the King James Bible, and greedy decoding soon
falls into a loop ("and the LORD, and the LORD"). It is a demo and a test fixture that answers in
English, not a language model to rely on.

## Model

| | |
| --- | --- |
| architecture | GPT-2 (`GPT2LMHeadModel`; llama.cpp's `gpt2` loader runs it) |
| layers × width × heads | {h['n_layer']} × {h['n_embd']} × {h['n_head']} |
| context | {h['context']} tokens |
| vocabulary | {h['vocab_size']} tokens, byte-level BPE trained on the training text (GPT-2's pre-tokenizer; `<|endoftext|>` = 0 is BOS/EOS) |
| parameters | {m['parameters']:,} (output layer tied to the token embedding) |
| weights | `model.safetensors`, float32, {size / 1e6:.1f} MB |

## Training text and licence

The King James Version of the Bible (1611), as shipped by Debian's `bible-kjv-text` package and
printed by its `bible` program (package `bible-kjv`): `bible -l100000 gen1:1-rev22:21`, verse numbers
dropped, one verse a line, one chapter a document (chapters separated by `<|endoftext|>`).
The text's sha256 (as printed) is `{m['text_sha256']}`.

Licence: the KJV text is in the public domain (the Debian package's copyright file: "The copyright
for the King James Version of the Bible is expired since the translation was done in 1611"; the
package's data file is "provided for unrestricted use", and Berth ships no part of that program).
(In the United Kingdom the KJV is under perpetual Crown letters patent; outside it, it is public
domain.) The trained weights and tokenizer are released with Berth under Apache-2.0.
`training-words.txt` lists the text's {sum(1 for _ in open(os.path.join(out, 'training-words.txt')))} distinct words (lowercased); tests use
it to tell English-like output from gibberish.

Every {h['held_out_every_nth_chapter']}th chapter ({m['chapters']['held_out']} chapters, {m['tokens']['held_out']:,} tokens) is held out;
the other {m['chapters']['train']} chapters ({m['tokens']['train']:,} tokens) are the training set.

## Training

{h['steps']} steps of AdamW (β = 0.9, 0.95; weight decay {h['weight_decay']} on matrices), batch {h['batch_size']} × {h['context']} tokens
(random windows of the training token stream; {tokens_seen:,} tokens seen, {tokens_seen / m['tokens']['train']:.2f} epochs),
learning rate {h['lr']} after {h['warmup_steps']} warm-up steps, cosine-decayed to {h['min_lr']}; gradient clipping at {h['grad_clip']}; no dropout.
Seed {h['seed']}; torch {m['torch']} (Debian `python3-torch`), {h['threads']} threads, CPU.
Wall time: {m['train_seconds']} s on a 2-core machine shared with other work.

![loss curve](loss.png)

| step | held-out loss (nats/token) | perplexity | held-out blocks of {h['context']} |
| --- | --- | --- | --- |
{evals}

Rows before the last measure the first {h['eval_blocks']} held-out blocks only (to keep training fast); the last
row measures every held-out token, so it is the one number to quote, not a step in the curve.

**Held-out perplexity: {m['held_out_perplexity']}** (loss {m['held_out_loss']} nats per token, over every held-out token;
mean training loss over the last 20 steps: {m['final_train_loss_mean_last_20']}).

Greedy continuations by `transformers` (40 new tokens):

{samples}

llama.cpp runs it as it is: `scripts/demo-model/llama_cpp_convert.py` converts the checkpoint with
llama.cpp's own `convert_hf_to_gguf.py` (naming the pre-tokenizer `gpt-2` after checking that it is
GPT-2's), and `berth serve` on that file, like on Berth's own conversion, continues these prompts
with the same greedy text.

`training-log.csv` has the loss of every step; `training-metrics.json` everything above.

## Reproduce

```sh
bash scripts/demo-model/train.sh            # writes examples/demo-model/ (as root it apt-installs
                                            # bible-kjv, bible-kjv-text, python3-matplotlib)
```

The script fixes every seed, the data order and the thread count, and asks torch for deterministic
algorithms; the tokenizer is the same on every run. Float results can still differ across CPU kinds
and torch builds (this exact checkpoint came from one run; a bit-for-bit rerun was not checked).

## Use

```sh
npm start                                   # converts this checkpoint to GGUF (cached) and serves it
berth model convert examples/demo-model --out demo.gguf
```
"""
with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as handle:
    handle.write(card)
print(f"wrote {os.path.join(out, 'README.md')}", file=sys.stderr)
