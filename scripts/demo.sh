#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: installs what is missing, builds hearth, and runs
# a generation on the default model.
# Model: $HEARTH_MODEL if set; else the model fetched by scripts/get-model.sh if already there;
# else the shared stories260K model beside the repository (offline machines); else a download.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)" --target hearth-run

model="${HEARTH_MODEL:-}"
default_dl="${HEARTH_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/hearth/models}/SmolLM2-135M-Instruct-Q8_0.gguf"
shared="${HEARTH_SHARED:-$(cd .. && pwd)/shared}/models/stories260K-f32.gguf"
if [ -z "$model" ]; then
  if [ -s "$default_dl" ]; then model="$default_dl"
  elif [ -s "$shared" ]; then model="$shared"
  else model="$(scripts/get-model.sh smollm2-135m)"
  fi
fi

echo "== hearth-run on $model" >&2
if build/release/tools/hearth-run -m "$model" --info | grep -q "chat template: none"; then
  build/release/tools/hearth-run -m "$model" -p "Once upon a time" -n 64 --temp 0
else
  build/release/tools/hearth-run -m "$model" --chat -p "Name three things a smart home assistant can do." -n 96 --temp 0
fi
