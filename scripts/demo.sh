#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: installs what is missing, builds hearth, starts a
# broker and one worker on the default model, sends a demo request through the bus (the answer
# streams to the terminal), shows the broker's status, and stops both cleanly.
#   scripts/demo.sh          run the demo and stop
#   scripts/demo.sh --keep   leave the broker and worker running (stop them with: kill PID ...)
# Model: $HEARTH_MODEL if set; else the model fetched by scripts/get-model.sh if already there;
# else the shared stories260K model beside the repository (offline machines); else a download.
set -euo pipefail
cd "$(dirname "$0")/.."

keep=0
case "${1:-}" in
  --keep) keep=1 ;;
  "") ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  *) echo "demo.sh: unknown option $1 (use --keep or --help)" >&2; exit 2 ;;
esac

scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)" --target hearth-broker hearth-worker hearth hearth-run
bin=build/release

model="${HEARTH_MODEL:-}"
default_dl="${HEARTH_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/hearth/models}/SmolLM2-135M-Instruct-Q8_0.gguf"
shared="${HEARTH_SHARED:-$(cd .. && pwd)/shared}/models/stories260K-f32.gguf"
if [ -z "$model" ]; then
  if [ -s "$default_dl" ]; then model="$default_dl"
  elif [ -s "$shared" ]; then model="$shared"
  else model="$(scripts/get-model.sh smollm2-135m)"
  fi
fi

state="${XDG_STATE_HOME:-$HOME/.local/state}/hearth"
mkdir -p "$state"
echo "== starting hearth-broker and hearth-worker on $model (logs in $state/demo-*.log)" >&2
"$bin/broker/hearth-broker" >"$state/demo-broker.log" 2>&1 &
broker_pid=$!
"$bin/workers/hearth-worker" -m "$model" >"$state/demo-worker.log" 2>&1 &
worker_pid=$!

stop_all() {
  if [ "$keep" = 1 ]; then
    echo "== left running: broker pid $broker_pid, worker pid $worker_pid (stop: kill $broker_pid $worker_pid)" >&2
    return
  fi
  kill "$worker_pid" "$broker_pid" 2>/dev/null || true
  wait "$worker_pid" "$broker_pid" 2>/dev/null || true
  echo "== broker and worker stopped" >&2
}
trap stop_all EXIT

# Wait until the worker has registered (loading a model takes a moment).
for _ in $(seq 1 150); do
  if ! kill -0 "$broker_pid" 2>/dev/null; then echo "demo.sh: the broker exited:" >&2; cat "$state/demo-broker.log" >&2; exit 1; fi
  if ! kill -0 "$worker_pid" 2>/dev/null; then echo "demo.sh: the worker exited:" >&2; cat "$state/demo-worker.log" >&2; exit 1; fi
  if "$bin/clients/hearth" --broker-timeout 1000 status --json 2>/dev/null | grep -q '"model"'; then break; fi
  sleep 0.2
done

if "$bin/tools/hearth-run" -m "$model" --info | grep -q "chat template: none"; then
  echo "== hearth ask 'Once upon a time' (through the broker)" >&2
  "$bin/clients/hearth" -v ask -n 64 --temp 0 "Once upon a time"
else
  echo "== hearth chat -m 'Name three things a smart home assistant can do.' (through the broker)" >&2
  "$bin/clients/hearth" -v chat -n 96 --temp 0 -m "Name three things a smart home assistant can do."
fi
echo "== hearth status" >&2
"$bin/clients/hearth" status
