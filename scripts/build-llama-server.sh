#!/usr/bin/env bash
# Builds llama.cpp's own llama-server from the source bundled inside node-llama-cpp
# (the exact llama.cpp of the binary Berth runs), for side-by-side benchmarks.
# Cached outside the repository by node-llama-cpp version; a no-op when warm.
# Cold: about 9 minutes on 2 quiet cores (see README.md "CI"). Prints the binary's path on stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ver=$(node -p "require('$root/node_modules/node-llama-cpp/package.json').version")
cache="${BERTH_HOME:-$HOME/.cache/berth}/llama-server/$ver"
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
mkdir -p "$cache/bin"
# A build stopped part way (a failed CI step ends it) goes on where it stopped: the clone is kept
# (cloned aside, then moved, so a kept one is whole) and cmake rebuilds only what is missing.
if [ ! -d "$src/.git" ]; then
  rm -rf "$src" "$src.tmp"
  git clone -q "$root/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$src.tmp" >&2
  mv "$src.tmp" "$src"
fi
cd "$src"
echo "building llama-server $ver in $src" >&2
cmake -B build -DLLAMA_CURL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release >&2
cmake --build build -j"$(nproc)" --target llama-server llama-bench >&2
# The shared libraries first, the binary last: a warm cache (the check above) is a complete one.
find build/bin -name '*.so*' -exec cp -a {} "$cache/bin/" \; 2>/dev/null || true
cp build/bin/llama-bench "$cache/bin/"
cp build/bin/llama-server "$cache/bin/llama-server.tmp" && mv "$cache/bin/llama-server.tmp" "$cache/bin/llama-server"
echo "$cache/bin/llama-server"
