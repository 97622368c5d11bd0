"""Runs llama.cpp's convert_hf_to_gguf.py on Debian's torch 1.13.

That torch lacks torch.float8_e4m3fn / float8_e5m2, which the converter names in a dtype table at
import time: alias them to dummy dtypes first (no checkpoint here uses float8), then run the script
with its folder on sys.path for its `conversion` package.
Usage: llama_convert.py LLAMA_CPP_SRC_DIR  [convert_hf_to_gguf.py arguments...]
"""
import runpy
import sys

import torch

for name in ("float8_e4m3fn", "float8_e5m2"):
    if not hasattr(torch, name):
        setattr(torch, name, torch.uint8 if name == "float8_e4m3fn" else torch.int8)

# The converter imports sentencepiece before it looks for tokenizer.model; our checkpoints have
# none (byte-level BPE), so a stand-in module lets it fall through to its BPE path as it would.
import transformers  # noqa: E402,F401  (probes for sentencepiece at import: before the stand-in)

try:
    import sentencepiece  # noqa: F401
except ImportError:
    import types

    stub = types.ModuleType("sentencepiece")

    class SentencePieceProcessor:  # never used: no checkpoint here has tokenizer.model
        def __init__(self, *args, **kwargs):
            raise FileNotFoundError("sentencepiece stand-in")

    stub.SentencePieceProcessor = SentencePieceProcessor
    sys.modules["sentencepiece"] = stub
    sys.modules["sentencepiece.sentencepiece_model_pb2"] = stub

src = sys.argv[1]
script = f"{src}/convert_hf_to_gguf.py"
sys.path.insert(0, src)
sys.argv = [script, *sys.argv[2:]]
runpy.run_path(script, run_name="__main__")
