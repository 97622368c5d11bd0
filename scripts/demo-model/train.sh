#!/usr/bin/env bash
# Trains the demo model into examples/demo-model (or $1): the KJV text from Debian's bible-kjv
# (the `bible` program over bible-kjv-text), Debian's python3-torch via scripts/python-env.sh, CPU.
# Minutes on 2 cores (see the model card for the measured time). Extra arguments go to train.py (e.g. --steps 5 for a smoke run).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/examples/demo-model}"
shift || true
if ! command -v bible >/dev/null || [ ! -e /usr/lib/bible.data ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bible-kjv bible-kjv-text python3-matplotlib >&2
  else
    echo "train.sh: needs Debian's bible-kjv and bible-kjv-text (apt-get install bible-kjv bible-kjv-text python3-matplotlib)" >&2
    exit 1
  fi
fi
python="$(bash "$root/scripts/python-env.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# One line a verse (no wrapping), "Book N" headings between chapters.
bible -l100000 gen1:1-rev22:21 >"$work/kjv.txt"
# Debian's matplotlib lives in the system site-packages, which the venv sees.
exec_env=(env PYTHONHASHSEED=0 OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE MPLBACKEND=Agg)
"${exec_env[@]}" "$python" "$root/scripts/demo-model/train.py" --text "$work/kjv.txt" --out "$out" "$@"
"$python" "$root/scripts/demo-model/words.py" "$work/kjv.txt" "$out/training-words.txt"
"$python" "$root/scripts/demo-model/card.py" "$out"
