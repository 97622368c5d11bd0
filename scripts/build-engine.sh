#!/usr/bin/env bash
# Builds Berth's engine, node-llama-cpp's llama.cpp binding, from the llama.cpp source that package
# ships, with OpenMP. node-llama-cpp's prebuilt binaries are built without it (its CI sets
# GGML_OPENMP=OFF), so every decode's threads meet at a barrier that busy-waits and never yields:
# on a CPU shared with anything else that costs 5-10x the CPU per token (bench/README.md,
# "Throughput"). This build is the prebuilt one (every x86 CPU variant, chosen at run time) plus
# OpenMP, the way llama.cpp's own llama-server is built.
#
# The result is cached outside the repository by node-llama-cpp version and copied into
# node_modules/node-llama-cpp/llama/localBuilds/, where Berth's engine (src/engine/llamacpp.ts)
# finds it; without it Berth uses the prebuilt binary. A CPU variant that crashes on this machine
# (OpenMP with AMX does, on some virtual machines) is dropped after a test decode; the next best
# variant serves. Cold: about 15 CPU-minutes. Warm: a copy. Prints the build's directory.
# Berth uses it with BERTH_ENGINE_BUILD=openmp (src/engine/llamacpp.ts).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pkg="$root/node_modules/node-llama-cpp"
ver=$(node -p "require('$pkg/package.json').version")
cache="${BERTH_HOME:-$HOME/.cache/berth}/engine/$ver-openmp"
# The same options src/engine/llamacpp.ts asks getLlama for: they name the build's folder.
export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_NATIVE=OFF
export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_CPU_ALL_VARIANTS=ON
export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_BACKEND_DL=ON
export NODE_LLAMA_CPP_CMAKE_OPTION_GGML_OPENMP=ON

# install: copies the cached build into node_modules (a new folder, then a rename: whole or absent).
install() {
  local folder
  folder=$(cat "$cache/folder")
  local target="$pkg/llama/localBuilds/$folder"
  if [ ! -f "$target/Release/llama-addon.node" ]; then
    mkdir -p "$pkg/llama/localBuilds"
    rm -rf "$target.tmp"
    cp -a "$cache/$folder" "$target.tmp"
    rm -rf "$target"
    mv "$target.tmp" "$target"
  fi
  echo "$target"
}

if [ -f "$cache/done" ]; then install; exit 0; fi
command -v cmake >/dev/null || { echo "cmake is required to build the engine" >&2; exit 1; }
mkdir -p "$cache"
exec 9>"$cache.lock"
if ! flock -n 9; then
  echo "another build of the engine $ver is running; waiting for it" >&2
  flock 9
fi
if [ -f "$cache/done" ]; then install; exit 0; fi

# Built in a copy of the package, so node_modules never holds a half-built folder (node-llama-cpp
# would wait on its lock file) and a test run meanwhile keeps the prebuilt binary.
stage="$cache/stage"
rm -rf "$stage"
mkdir -p "$stage/node_modules"
for dependency in "$root"/node_modules/* "$root"/node_modules/.bin; do
  [ "$(basename "$dependency")" = node-llama-cpp ] || ln -s "$dependency" "$stage/node_modules/"
done
cp -a "$pkg" "$stage/node_modules/node-llama-cpp"
staged="$stage/node_modules/node-llama-cpp"
rm -rf "$staged/llama/localBuilds" "$staged/llama/llama.cpp"
git clone -q "$pkg/llama/gitRelease.bundle" "$staged/llama/llama.cpp" >&2
echo "building the engine (node-llama-cpp $ver, OpenMP) in $stage" >&2
node "$staged/dist/cli/cli.js" source build --gpu false --noUsageExample >&2
folder=$(cd "$staged/llama/localBuilds" && ls -d linux-* | grep -v '\.lock$' | head -n 1)
release="$staged/llama/localBuilds/$folder/Release"
[ -f "$release/llama-addon.node" ] || { echo "the engine build left no llama-addon.node" >&2; exit 1; }

# A test decode with the new build, in a child process (a crash must not end this script).
# shellcheck source=scripts/cpu-variants.sh
. "$root/scripts/cpu-variants.sh"
model=$(node "$root/scripts/tiny-model.mjs" "$root")
test_variants "$release" node "$root/scripts/engine-selftest.mjs" "$staged" "$model"

rm -rf "${cache:?}/$folder"
mv "$staged/llama/localBuilds/$folder" "$cache/$folder"
echo "$folder" >"$cache/folder"
rm -rf "$stage"
touch "$cache/done"
install
