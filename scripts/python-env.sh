#!/usr/bin/env bash
# The Python oracles the tests compare Berth against (transformers, huggingface_hub, gguf, and
# llama.cpp's convert_hf_to_gguf.py) and the demo model's trainer: a venv over Debian's
# python3-torch (1.13; PyPI has no torch for this machine), cached under $BERTH_HOME/py.
# Prints the venv's python on stdout; progress on stderr. A no-op when warm.
# transformers 4.45.x is the last line that runs on torch 1.13; huggingface_hub < 1 goes with it.
set -euo pipefail
PINS=(transformers==4.45.2 "huggingface_hub==0.25.2" gguf==0.17.1 safetensors==0.4.5 tokenizers==0.20.3)
stamp="${PINS[*]}"
venv="${BERTH_HOME:-$HOME/.cache/berth}/py/venv"
log() { echo "python-env: $*" >&2; }
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/STAMP" 2>/dev/null || true)" = "$stamp" ]; then echo "$venv/bin/python"; exit 0; fi

mkdir -p "$(dirname "$venv")"
exec 9>"$(dirname "$venv")/.lock"
flock 9
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/STAMP" 2>/dev/null || true)" = "$stamp" ]; then echo "$venv/bin/python"; exit 0; fi

if ! /usr/bin/python3 -c 'import torch, venv' 2>/dev/null; then
  log "installing Debian's python3-torch and python3-venv"
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-venv >&2 ||
      { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-venv >&2; }
  else
    log "python3-torch and python3-venv are missing (apt-get install python3-torch python3-venv as root)"; exit 1
  fi
fi
rm -rf "$venv"
/usr/bin/python3 -m venv --system-site-packages "$venv" >&2
log "pip install ${PINS[*]}"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "${PINS[@]}" >&2
"$venv/bin/python" -c 'import torch, transformers, huggingface_hub, gguf, safetensors' >&2
echo "$stamp" >"$venv/STAMP"
echo "$venv/bin/python"
