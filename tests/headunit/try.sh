#!/usr/bin/env bash
# Runs a fleet engineer's config and candump trace on the emulated head unit, in one command:
# builds the head unit's static agent if needed, builds the image with those two files (and the
# DBC file the config names), boots it (Debian 12's arm64 kernel under qemu-system-aarch64, no
# network), replays the trace in real time on the kernel's SocketCAN through canplayer to the
# agent, and prints what the agent saw — its HMI vehicle state, the prompts, what it stored —
# and its footprint. docs/fleet-engineer.md shows a run.
#
#   tests/headunit/try.sh --config my.toml --trace my.log [--interface can0]
#
# --interface: the trace's interface whose frames go on the config's bus (default: the
# interface the config names). The trace may be `candump -l` or candump's screen form. Host
# packages as for the head unit's test: qemu-system-arm, cpio, kmod, libc6-arm64-cross and the
# arm64 dpkg architecture (tests/headunit/build-image.sh adds it when run as root). The run's
# files stay in target/headunit-try/run/ (HEADUNIT_DIR overrides target/headunit-try).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET=aarch64-unknown-linux-musl
usage() { echo "usage: $0 --config FILE --trace FILE [--interface NAME]" >&2; exit 2; }
config=""; trace=""; interface=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --config) config="${2:-}"; shift 2 ;;
    --trace) trace="${2:-}"; shift 2 ;;
    --interface) interface="${2:-}"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[ -n "$config" ] && [ -n "$trace" ] || usage
[ -f "$config" ] || { echo "no config at $config" >&2; exit 1; }
[ -f "$trace" ] || { echo "no trace at $trace" >&2; exit 1; }
config="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"
trace="$(cd "$(dirname "$trace")" && pwd)/$(basename "$trace")"

export HEADUNIT_DIR="${HEADUNIT_DIR:-$ROOT/target/headunit-try}"
mkdir -p "$HEADUNIT_DIR"
# The packages the head unit's test downloaded already, if it ran.
if [ ! -d "$HEADUNIT_DIR/debs" ] && [ -d "$ROOT/target/headunit/debs" ]; then
  cp -al "$ROOT/target/headunit/debs" "$HEADUNIT_DIR/debs" 2>/dev/null \
    || cp -a "$ROOT/target/headunit/debs" "$HEADUNIT_DIR/debs"
fi

echo "== the head unit's agent (cargo build --release -p rapport-agent --no-default-features --target $TARGET)"
agent="${RAPPORT_HEADUNIT_AGENT:-}"
if [ -z "$agent" ]; then
  (cd "$ROOT" && cargo build --release -p rapport-agent --no-default-features --target "$TARGET")
  agent="$ROOT/target/$TARGET/release/rapport-agent"
fi

echo "== the image (config $config, trace $trace)"
HEADUNIT_TRY_CONFIG="$config" HEADUNIT_TRY_INTERFACE="$interface" \
  bash "$ROOT/tests/headunit/build-image.sh" "$agent" "$trace"

# Real time: the trace's length, plus boot and start-up.
span="$(awk 'NR == 1 { gsub(/[()]/, "", $1); a = $1 } END { gsub(/[()]/, "", $1); printf "%d", $1 - a }' \
  "$HEADUNIT_DIR/rootfs/var/trace/normal.log")"
run="$HEADUNIT_DIR/run"
rm -rf "$run"
echo "== booting the head unit: the trace lasts ${span} s"
start=$SECONDS
HEADUNIT_TIMEOUT="$(( span + 600 ))" bash "$ROOT/tests/headunit/run-guest.sh" "$run" > /dev/null
wall=$(( SECONDS - start ))

show() { if command -v python3 >/dev/null; then python3 -m json.tool "$1"; else cat "$1"; echo; fi; }
echo
echo "== the run ($wall s on this machine, boot to power-off)"
cat "$run/try.txt"
echo
echo "== check-config"
cat "$run/check-config.txt"
echo
echo "== what the agent's screen shows (GET /v1/vehicle)"
show "$run/vehicle.json"
echo
echo "== prompts the screen would show now (GET /v1/prompts)"
show "$run/prompts.json"
echo
echo "== what it stored (rapport-agent store: the vehicle, faults, prompts; the outbox's records)"
grep -v '"kind":"outbox"' "$run/store.jsonl" || true
echo "outbox records waiting for the cloud: $(grep -c '"kind":"outbox"' "$run/store.jsonl" || true)"
echo
echo "== warnings in the agent's log"
grep -c 'WARN' "$run/agent.log" | sed 's/^/warnings: /' || true
grep 'WARN' "$run/agent.log" | sed 's/\x1b\[[0-9;]*m//g' | head -5 || true
echo
echo "files: $run (agent.log, vehicle.json, prompts.json, store.jsonl, console.log)"
