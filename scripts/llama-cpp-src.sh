#!/usr/bin/env bash
# llama.cpp's source tree for its convert_hf_to_gguf.py (the reference converter the converter
# tests compare against): the exact llama.cpp of the node-llama-cpp binary, from the git bundle
# that package ships. Cloned once under $BERTH_TOOLS_HOME (default ~/.cache/berth); prints the path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ver=$(node -p "require('$root/node_modules/node-llama-cpp/package.json').version")
dir="${BERTH_TOOLS_HOME:-$HOME/.cache/berth}/llama-cpp-src/$ver"
if [ -f "$dir/convert_hf_to_gguf.py" ]; then echo "$dir"; exit 0; fi
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
if [ -f "$dir/convert_hf_to_gguf.py" ]; then echo "$dir"; exit 0; fi
rm -rf "$dir.tmp"
git -c advice.detachedHead=false clone -q "$root/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$dir.tmp" >&2
mv "$dir.tmp" "$dir"
echo "$dir"
