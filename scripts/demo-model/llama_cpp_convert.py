"""Converts the demo checkpoint with llama.cpp's own convert_hf_to_gguf.py (the reference converter).

llama.cpp names a BPE pre-tokenizer by hashing the token ids its vocabulary gives a test string, so
a vocabulary trained here is never in its table. The demo tokenizer's pre-tokenizer IS GPT-2's
(ByteLevel, GPT-2 regex, no prefix space, no normalizer): this checks that in tokenizer.json and
then answers "gpt-2" for it, which is what convert_hf_to_gguf_update.py would add for a new model.
Everything else is llama.cpp's code, run through test/support/convert/llama_convert.py (the
float8 alias for Debian's torch 1.13).
Usage: llama_cpp_convert.py LLAMA_CPP_SRC_DIR CHECKPOINT_DIR --outfile OUT.gguf [--outtype f32|f16]
"""
import json
import os
import runpy
import sys

import torch

src, checkpoint = sys.argv[1], sys.argv[2]
with open(os.path.join(checkpoint, "tokenizer.json"), encoding="utf-8") as handle:
    tokenizer = json.load(handle)
pre = tokenizer.get("pre_tokenizer") or {}
if tokenizer.get("normalizer") is not None or pre != {
    "type": "ByteLevel",
    "add_prefix_space": False,
    "trim_offsets": True,
    "use_regex": True,
}:
    sys.exit(f"{checkpoint}/tokenizer.json: pre-tokenizer is not GPT-2's byte-level one: {pre}")

for name in ("float8_e4m3fn", "float8_e5m2"):
    if not hasattr(torch, name):
        setattr(torch, name, torch.uint8 if name == "float8_e4m3fn" else torch.int8)
sys.path.insert(0, src)
from conversion.base import TextModel  # noqa: E402

TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"

here = os.path.dirname(os.path.abspath(__file__))
wrapper = os.path.join(here, "..", "..", "test", "support", "convert", "llama_convert.py")
sys.argv = [wrapper, src, checkpoint, *sys.argv[3:]]
runpy.run_path(wrapper, run_name="__main__")
