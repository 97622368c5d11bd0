"""transformers' greedy generate on a checkpoint, the oracle for Berth's greedy tokens.
Usage: greedy.py CHECKPOINT_DIR NEW_TOKENS PROMPT... ; prints JSON [{prompt, prompt_ids, generated}].
With each step's margin (best minus second-best logit) and second-best token, so a test can
tell a near-tie from a wrong model. Prompts are tokenized by the checkpoint's own tokenizer without special tokens (as Berth's engine does
for a model with add_bos_token false), in float32."""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

directory, count, prompts = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
tokenizer = AutoTokenizer.from_pretrained(directory)
model = AutoModelForCausalLM.from_pretrained(directory, torch_dtype=torch.float32).eval()
results = []
for prompt in prompts:
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=count, min_new_tokens=count,
            do_sample=False, num_beams=1, pad_token_id=tokenizer.eos_token_id,
            output_scores=True, return_dict_in_generate=True,
        )
    # The gap between the best and second-best logit at each step: how near a tie each choice was.
    tops = [torch.topk(scores[0], 2) for scores in out.scores]
    results.append({
        "prompt": prompt, "prompt_ids": ids[0].tolist(),
        "generated": out.sequences[0, ids.shape[1]:].tolist(),
        "margins": [float(top.values[0] - top.values[1]) for top in tops],
        "runner_up": [int(top.indices[1]) for top in tops],
    })
print(json.dumps(results))
