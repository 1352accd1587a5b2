#!/usr/bin/env bash
# schemathesis against the two OpenAPI documents on running instances (docs/api.md): a cloud
# (the example config: embedded broker, sled in a temporary folder, a known operator token)
# and an agent driving its simulated car with its HMI API. Each document is first validated
# as OpenAPI 3.1 (openapi-spec-validator), then fuzzed: no 5xx, and no answer whose status,
# content type or body the document does not allow. Bounded: a few examples per operation,
# and a time limit per run.
#
# Run it locally from anywhere: `bash .ci/schemathesis.sh`. It installs schemathesis and the
# validator (pinned) into a venv under target/ from PyPI on first use; without Python's venv
# or PyPI it says so and stops (a failure under CI=true or RAPPORT_REQUIRE_SCHEMATHESIS=1, a
# skip otherwise). Knobs: RAPPORT_SCHEMATHESIS_EXAMPLES (per operation, default 25),
# RAPPORT_SCHEMATHESIS_SEED (default 1; `random` for a new one each run).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VALIDATOR_VERSION=0.7.2
venv="target/schemathesis-venv"
examples="${RAPPORT_SCHEMATHESIS_EXAMPLES:-25}"
seed="${RAPPORT_SCHEMATHESIS_SEED:-1}"
required=""
if [ "${CI:-}" = true ] || [ "${RAPPORT_REQUIRE_SCHEMATHESIS:-}" = 1 ]; then required=1; fi

missing() {
  echo "schemathesis: $*" >&2
  if [ -n "$required" ]; then exit 1; fi
  echo "schemathesis: skipped (set RAPPORT_REQUIRE_SCHEMATHESIS=1 to make this a failure)" >&2
  exit 0
}

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION" ||
   ! [ -x "$venv/bin/openapi-spec-validator" ]; then
  command -v python3 >/dev/null || missing "no python3 to install schemathesis with"
  echo "installing schemathesis $SCHEMATHESIS_VERSION and openapi-spec-validator $VALIDATOR_VERSION into $venv"
  python3 -m venv "$venv" || missing "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" \
    "openapi-spec-validator==$VALIDATOR_VERSION" ||
    missing "pip could not install schemathesis $SCHEMATHESIS_VERSION from PyPI"
fi

cargo build -q -p rapport-cloud --bin rapport-cloud
cargo build -q -p rapport-agent --bin rapport-agent
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
broker_port="$(free_port)"
api_port="$(free_port)"
hmi_port="$(free_port)"
token="schemathesis-operator-$(date +%s)-$RANDOM"

# The cloud: the example config, its files beside it, the store in $work/data, ports free now.
cp config/cloud.toml config/strategies.toml config/registry.example.csv "$work/"
sed -i -e "s|^listen = \"127.0.0.1:1883\"|listen = \"127.0.0.1:$broker_port\"|" \
  -e "s|^listen = \"127.0.0.1:8080\"|listen = \"127.0.0.1:$api_port\"|" \
  -e 's|^# operator_token_env = "RAPPORT_OPERATOR_TOKEN"|operator_token_env = "RAPPORT_OPERATOR_TOKEN"|' \
  -e 's|^per_second = 50$|per_second = 1000000|' -e 's|^burst = 100$|burst = 1000000|' \
  "$work/cloud.toml"
# schemathesis sends over a thousand requests in seconds: the operator's bucket is opened wide
# (429 is documented on every operation, and cloud/tests/access.rs tests the limit itself).
grep -q "^per_second = 1000000" "$work/cloud.toml" || { echo "cloud.toml: no rate limit line to open" >&2; exit 1; }
grep -q "127.0.0.1:$api_port" "$work/cloud.toml" || { echo "cloud.toml: no API listen line to set" >&2; exit 1; }
RAPPORT_OPERATOR_TOKEN="$token" RUST_LOG=warn \
  "$target_dir/debug/rapport-cloud" run --config "$work/cloud.toml" >"$work/cloud.log" 2>&1 &
pids+=($!)

# The agent: the passenger config's simulated car, its HMI API on a free port.
RUST_LOG=warn "$target_dir/debug/rapport-agent" run --config config/passenger.toml --sim \
  --speedup 30 --data-dir "$work/agent" --hmi "127.0.0.1:$hmi_port" >"$work/agent.log" 2>&1 &
pids+=($!)

# GET a URL to stdout (python3, which the venv needs anyway; no curl on a bare machine).
fetch() {
  python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=5).read())' "$1"
}
wait_for() {
  local url="$1" log="$2"
  for _ in $(seq 1 120); do
    if fetch "$url" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "$url did not answer in 60 s; its log:" >&2
  tail -40 "$log" >&2
  exit 1
}
wait_for "http://127.0.0.1:$api_port/healthz" "$work/cloud.log"
wait_for "http://127.0.0.1:$hmi_port/healthz" "$work/agent.log"

checks="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
seed_args=()
if [ "$seed" != random ]; then seed_args=(--seed "$seed"); fi
status=0
run() {
  local name="$1" url="$2"; shift 2
  local started=$SECONDS
  echo "== $name: $url"
  fetch "$url" >"$work/$name.json"
  "$venv/bin/openapi-spec-validator" "$work/$name.json" || { status=1; return; }
  timeout 150 "$venv/bin/schemathesis" run "$url" "$@" --checks "$checks" \
    --max-examples "$examples" "${seed_args[@]}" --phases examples,coverage,fuzzing \
    --generation-database none --workers 1 --no-color --request-timeout 10 || status=1
  echo "== $name: $((SECONDS - started)) s"
}
run cloud "http://127.0.0.1:$api_port/api/v1/openapi.json" -H "Authorization: Bearer $token" \
  --exclude-path /api/v1/openapi.json
# The event stream never ends by design: checked by the agent's own tests, not fuzzed here.
run agent "http://127.0.0.1:$hmi_port/v1/openapi.json" --exclude-path /v1/prompts/stream

for pid in "${pids[@]}"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "a server exited during the run; the logs:" >&2
    tail -20 "$work/cloud.log" "$work/agent.log" >&2
    status=1
  fi
done
if [ "$status" != 0 ]; then
  echo "schemathesis found problems (above); server logs:" >&2
  grep -iE "error|panic" "$work/cloud.log" "$work/agent.log" | tail -20 >&2 || true
fi
exit "$status"
