#!/bin/sh
# The run tests/headunit/try.sh asks for (busybox sh, run by the guest's init as main.sh): the
# engineer's config (/etc/rapport/agent.toml) on a virtual CAN interface named as in the
# config, the agent started, their trace (/var/trace/normal.log) replayed on it by canplayer in
# real time, then what the agent saw and its footprint, into $SHARE:
#
#   try.txt        NAME=VALUE lines: times, frames, the agent's footprint
#   vehicle.json   the HMI's vehicle state (GET /v1/vehicle)
#   prompts.json   what the screen would show (GET /v1/prompts)
#   store.jsonl    what the agent remembers and what waits for the cloud (rapport-agent store)
#   agent.log      the agent's log
set -u
. /etc/rapport/try.env
AGENT_BIN=/opt/rapport/rapport-agent
CFG=/etc/rapport/agent.toml
OUT=${SHARE:-/tmp/share}
up() { cut -d' ' -f1 /proc/uptime; }
note() { echo "$1=$2" >> "$OUT/try.txt"; }
vm() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }
get() { timeout 10 wget -q -O - "http://127.0.0.1:8686$1"; }
: > "$OUT/try.txt"

ip link add "$interface" type vcan
ip link set "$interface" mtu 72
ip link set "$interface" up
note interface "$interface"
note trace_frames "$(wc -l < /var/trace/normal.log)"
"$AGENT_BIN" check-config --config "$CFG" > "$OUT/check-config.txt" 2>&1
note check_config_rc "$?"
"$AGENT_BIN" run --config "$CFG" --data-dir /data/agent > "$OUT/agent.log" 2>&1 &
AGENT=$!
i=0
while [ "$i" -lt 1200 ] && ! get /healthz > /dev/null 2>&1; do
  kill -0 "$AGENT" 2>/dev/null || break
  sleep 0.1; i=$((i + 1))
done
note hmi_ready_s "$(up)"
rx0=$(cat "/sys/class/net/$interface/statistics/rx_packets")
t0=$(up)
canplayer -I /var/trace/normal.log "$interface=$trace_interface"
note canplayer_rc "$?"
note replay_s "$(awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }')"
note frames_on_bus "$(( $(cat "/sys/class/net/$interface/statistics/rx_packets") - rx0 ))"
sleep 2
get /v1/vehicle > "$OUT/vehicle.json"
get /v1/prompts > "$OUT/prompts.json"
note agent_alive "$(kill -0 "$AGENT" 2>/dev/null && echo yes || echo no)"
note vmhwm_kb "$(vm "$AGENT" VmHWM)"
note vmrss_kb "$(vm "$AGENT" VmRSS)"
note threads "$(ls "/proc/$AGENT/task" 2>/dev/null | wc -l)"
note binary_bytes "$(wc -c < "$AGENT_BIN")"
kill -TERM "$AGENT" 2>/dev/null
wait "$AGENT"
note agent_exit "$?"
"$AGENT_BIN" store --config "$CFG" --data-dir /data/agent > "$OUT/store.jsonl" 2>&1
note store_rc "$?"
