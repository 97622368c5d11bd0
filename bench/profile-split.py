#!/usr/bin/env python3
"""Sorts `perf script` samples of a `berth serve` process (bench/profile-serve.sh) into where its CPU goes.

Each sample's stack is walked from the leaf up; the first frame that names a category decides it
(a libc or kernel leaf, such as memcpy or futex, counts for whatever called it).
Usage: profile-split.py OUT_DIR  (reads perf-C.txt and cpu-C.txt for each concurrency C there)."""
import glob, os, re, sys

RULES = [
    ("barrier spin", re.compile(r"ggml_barrier|ggml_thread_cpu_relax|ggml_graph_compute_check_for_work|compute_poll")),
    ("engine compute (ggml)", re.compile(r"libggml|ggml_|llama_decode|llama_context::|libllama")),
    ("sampling", re.compile(r"llama_sampler|AddonSampler|sampleToken|_sampleToken|TokenBias|SamplerChain")),
    ("detokenize", re.compile(r"token_to_piece|detokenize|Detokenizer|text\.js")),
    ("HTTP/SSE", re.compile(r"fastify|pino|/dist/server/|/dist/gateway/|node:_http|node:http|node:net|_http_|node:stream|stream/|tcp_|sock_|writev|inet_|ip_")),
    ("driver: node-llama-cpp JS", re.compile(r"node-llama-cpp/dist")),
    ("driver: Berth engine loop", re.compile(r"/dist/engine/")),
    ("thread create/join, futex", re.compile(r"clone|pthread_create|pthread_join|futex|start_thread")),
]


def classify(stack):
    for frame in stack:
        for name, pattern in RULES:
            if pattern.search(frame):
                return name
    return "other (V8 GC/runtime, kernel)"


def split(path):
    counts, stack, header = {}, [], False
    with open(path, errors="replace") as lines:
        for line in lines:
            if not line.strip():
                if header:
                    key = classify(stack)
                    counts[key] = counts.get(key, 0) + 1
                stack, header = [], False
            elif not line.startswith((" ", "\t")):
                header = True
            else:
                stack.append(line.strip())
    if header:
        key = classify(stack)
        counts[key] = counts.get(key, 0) + 1
    return counts


def main(out):
    names = [name for name, _ in RULES] + ["other (V8 GC/runtime, kernel)"]
    levels = sorted(int(re.search(r"perf-(\d+)\.txt", p).group(1)) for p in glob.glob(os.path.join(out, "perf-*.txt")))
    rows = {}
    for c in levels:
        counts = split(os.path.join(out, f"perf-{c}.txt"))
        info = dict(kv.split("=") for kv in open(os.path.join(out, f"cpu-{c}.txt")).read().split()[0:])
        cpu_ms_per_token = int(info["cpu_ticks"]) * 10 / int(info["tokens"])
        total = sum(counts.values()) or 1
        rows[c] = (cpu_ms_per_token, {n: counts.get(n, 0) / total for n in names})
    print("| where (CPU ms per generated token, share) | " + " | ".join(f"c = {c}" for c in levels) + " |")
    print("| --- | " + " | ".join("--:" for _ in levels) + " |")
    for n in names:
        cells = [f"{rows[c][0] * rows[c][1][n]:.2f} ({rows[c][1][n] * 100:.0f}%)" for c in levels]
        print(f"| {n} | " + " | ".join(cells) + " |")
    print("| **total CPU ms/token** | " + " | ".join(f"**{rows[c][0]:.2f}**" for c in levels) + " |")


main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/berth-profile")
