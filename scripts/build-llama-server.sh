#!/usr/bin/env bash
# Builds llama.cpp's own llama-server from the source bundled inside node-llama-cpp
# (the exact llama.cpp of the binary Berth runs), for side-by-side benchmarks. Built as Berth's
# engine is (scripts/build-engine.sh): every x86 CPU variant, the best one loaded at run time, with
# OpenMP; so both sides run the same kernels. A -march=native build crashed on a host with AMX
# (OpenMP worker threads in the AMX matmul); a variant that crashes in a test run is dropped
# (scripts/cpu-variants.sh).
# Cached outside the repository by node-llama-cpp version; a no-op when warm.
# Cold: about 9 minutes on 2 quiet cores (see README.md "CI"). Prints the binary's path on stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ver=$(node -p "require('$root/node_modules/node-llama-cpp/package.json').version")
cache="${BERTH_HOME:-$HOME/.cache/berth}/llama-server/$ver-variants"
if [ -x "$cache/bin/llama-server" ]; then echo "$cache/bin/llama-server"; exit 0; fi
command -v cmake >/dev/null || { echo "cmake is required to build llama-server" >&2; exit 1; }

# CI builds this in the background while a benchmark may ask for it too: the second caller waits for
# the first build and then finds the cache warm, instead of building the same tree twice at once.
mkdir -p "$(dirname "$cache")"
exec 9>"$cache.lock"
if ! flock -n 9; then
  echo "another build of llama-server $ver is running; waiting for it" >&2
  flock 9
fi
if [ -x "$cache/bin/llama-server" ]; then echo "$cache/bin/llama-server"; exit 0; fi

src="$cache/src"
mkdir -p "$cache"
# A build stopped part way (a failed CI step ends it) goes on where it stopped: the clone is kept
# (cloned aside, then moved, so a kept one is whole) and cmake rebuilds only what is missing.
if [ ! -d "$src/.git" ]; then
  rm -rf "$src" "$src.tmp"
  git clone -q "$root/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$src.tmp" >&2
  mv "$src.tmp" "$src"
fi
cd "$src"
echo "building llama-server $ver in $src" >&2
cmake -B build-variants -DLLAMA_CURL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=ON -DGGML_BACKEND_DL=ON -DGGML_OPENMP=ON >&2
# With GGML_BACKEND_DL the CPU variants are modules that nothing links: build each by name.
variants=$(cmake --build build-variants --target help | grep -o 'ggml-cpu-[a-z0-9_]*' | sort -u)
# shellcheck disable=SC2086
cmake --build build-variants -j"$(nproc)" --target llama-server llama-bench $variants >&2
# Staged beside the cache, tested, then renamed: a warm cache (the check above) is a complete one.
staged="$cache/bin.new"
rm -rf "$staged" && mkdir -p "$staged"
find build-variants/bin -name '*.so*' -exec cp -a {} "$staged/" \;
cp build-variants/bin/llama-bench build-variants/bin/llama-server "$staged/"
# A test run: llama-server loads the tiny model (with its warm-up decode) and answers /health.
serves() {
  local port=$((20000 + RANDOM % 20000)) pid
  "$staged/llama-server" -m "$model" --host 127.0.0.1 --port "$port" -t 2 >"$cache/selftest.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 120); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" || echo "llama-server exited with status $? in its test run" >&2
      return 1
    fi
    if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then
      kill "$pid" && wait "$pid" || true
      return 0
    fi
    sleep 0.5
  done
  kill "$pid" || true
  echo "llama-server did not answer /health in 60 s in its test run" >&2
  return 1
}
# shellcheck source=scripts/cpu-variants.sh
. "$root/scripts/cpu-variants.sh"
model=$(node "$root/scripts/tiny-model.mjs" "$root")
test_variants "$staged" serves
rm -rf "$cache/bin"
mv "$staged" "$cache/bin"
echo "$cache/bin/llama-server"
