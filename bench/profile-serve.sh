#!/usr/bin/env bash
# Where `berth serve`'s CPU goes per generated token, at each concurrency: perf samples every thread of
# the server (JavaScript named through --perf-basic-prof) while c streaming clients each run `per`
# greedy 128-token completions; bench/profile-split.py sorts the samples into engine compute, barrier
# spinning, sampling, detokenizing, the JS driver (Berth's loop + node-llama-cpp) and HTTP/SSE.
# Usage: bash bench/profile-serve.sh MODEL.gguf [OUT_DIR] [CONCURRENCIES] [PER_WORKER]   (needs perf)
set -euo pipefail
model=$1 out=${2:-/tmp/berth-profile} levels=${3:-"1 8 16"} per=${4:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
for c in $levels; do
  port=$((${PORT_BASE:-18000} + c))
  UV_THREADPOOL_SIZE=1 BERTH_LOG_LEVEL=warn node --perf-basic-prof "$root/bin/berth.js" serve --model "$model" \
    --port "$port" --parallel "$c" --threads "${THREADS:-2}" --ctx 1024 >"$out/serve-$c.log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.5; done
  name=$(basename "$model" .gguf)
  body() { printf '{"model":"%s","prompt":"%s. The harbour master kept a ledger of every ship","max_tokens":128,"temperature":0,"stream":true,"ignore_eos":true}' "$name" "$1"; }
  # Warm-up, then the measured load with perf attached.
  curl -sN "http://127.0.0.1:$port/v1/completions" -H 'content-type: application/json' -d "$(body 0)" >/dev/null
  perf record -F 499 -g -p "$pid" -o "$out/perf-$c.data" >/dev/null 2>&1 &
  perfpid=$!
  cpu0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  workers=()
  for w in $(seq 1 "$c"); do
    (for r in $(seq 1 "$per"); do
      curl -sN "http://127.0.0.1:$port/v1/completions" -H 'content-type: application/json' -d "$(body "$w$r")" >/dev/null
    done) &
    workers+=($!)
  done
  wait "${workers[@]}"
  cpu1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  kill -INT "$perfpid"; wait "$perfpid" 2>/dev/null || true
  echo "c=$c tokens=$((c * per * 128)) cpu_ticks=$((cpu1 - cpu0))" | tee "$out/cpu-$c.txt"
  perf script -i "$out/perf-$c.data" 2>/dev/null >"$out/perf-$c.txt"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
