#!/usr/bin/env bash
# Downloads a GGUF model into the hearth model folder and prints its path.
# Usage: scripts/get-model.sh [NAME | URL]
#   NAME: smollm2-135m (default), smollm2-360m, qwen2.5-0.5b, qwen2.5-1.5b
#   URL:  any http(s) URL of a .gguf file
# The folder is $HEARTH_MODELS, else ${XDG_DATA_HOME:-~/.local/share}/hearth/models.
set -euo pipefail

what="${1:-smollm2-135m}"
case "$what" in
  smollm2-135m) url="https://huggingface.co/bartowski/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct-Q8_0.gguf" ;;
  smollm2-360m) url="https://huggingface.co/bartowski/SmolLM2-360M-Instruct-GGUF/resolve/main/SmolLM2-360M-Instruct-Q8_0.gguf" ;;
  qwen2.5-0.5b) url="https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q8_0.gguf" ;;
  qwen2.5-1.5b) url="https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct-GGUF/resolve/main/qwen2.5-1.5b-instruct-q4_k_m.gguf" ;;
  http://*|https://*) url="$what" ;;
  -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
  *) echo "get-model: unknown model '$what' (see --help)" >&2; exit 2 ;;
esac

dir="${HEARTH_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/hearth/models}"
mkdir -p "$dir"
file="$dir/$(basename "${url%%\?*}")"
if [ -s "$file" ]; then
  echo "$file"
  exit 0
fi
command -v curl >/dev/null || { echo "get-model: curl is needed (apt-get install curl)" >&2; exit 1; }
echo "get-model: downloading $url" >&2
# Into a .part file first, so an interrupted download never looks like a model.
if ! curl -fL --retry 3 --connect-timeout 20 -o "$file.part" "$url"; then
  rm -f "$file.part"
  echo "get-model: download failed; fetch a GGUF file by hand and pass it with -m" >&2
  exit 1
fi
if [ "$(head -c 4 "$file.part")" != "GGUF" ]; then
  rm -f "$file.part"
  echo "get-model: $url is not a GGUF file" >&2
  exit 1
fi
mv "$file.part" "$file"
echo "$file"
