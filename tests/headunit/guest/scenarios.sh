#!/bin/sh
# The head unit's scenarios, in sequence, in one boot (busybox sh, run by the guest's init).
#
# The agent is the head unit's release binary (/opt/rapport/rapport-agent) with the commercial
# example config on vcan0 (/etc/rapport/agent.toml, sync pointed at a loopback port where
# nothing listens), on the FD interface vcan1 (/etc/rapport/fd.toml), and with the passenger
# example on vcan2 (/etc/rapport/passenger.toml). The other side of the bus is can-utils —
# canplayer (the truck trace), cangen (the flood), cansend (single frames) — and, on vcan2, the
# ECU simulator (/opt/rapport/rapport-ecu-sim) answering the agent's OBD-II and UDS requests.
#
# Evidence goes to $SHARE: results.txt (one NAME=VALUE per line, what the host's test asserts
# on), and one folder per scenario with the agent's log, HMI answers, store dumps and the
# kernel's CAN receive lists. Markers on the console: "=== HEADUNIT begin|end NAME <uptime> ===".
#
# Kernel command line: rapport.soak=SECONDS (footprint run, default 60), rapport.only=a,b,...
# (run those scenarios only; default all, in order).
set -u
AGENT_BIN=/opt/rapport/rapport-agent
CFG=/etc/rapport/agent.toml
FD_CFG=/etc/rapport/fd.toml
DATA=/data/agent
TRACE=/var/trace/normal.log
TRACE_FRAMES=$(wc -l < "$TRACE")
HMI=http://127.0.0.1:8686
OUT=${SHARE:-/tmp/share}
AGENT=""
: > "$OUT/results.txt"

param() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^rapport\.$1=//p"; }
SOAK=$(param soak); SOAK=${SOAK:-60}
ONLY=$(param only)
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "[$(up)] $*"; }
result() { echo "$1=$2" >> "$OUT/results.txt"; echo "RESULT $1=$2"; }
begin() { SC=$1; mkdir -p "$OUT/$SC"; echo "=== HEADUNIT begin $SC $(up) ==="; result "$SC.begin" "$(up)"; }
end() { result "$SC.end" "$(up)"; echo "=== HEADUNIT end $SC $(up) ==="; }
wanted() { [ -z "$ONLY" ] || echo ",$ONLY," | grep -q ",$1,"; }
stat_of() { cat "/sys/class/net/$1/statistics/$2" 2>/dev/null || echo 0; }
vm() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }
# Where process $1's resident memory is, from its smaps, as results "$2.mem_<kind>_kb": the
# binary's own pages (file), the heap (brk and anonymous maps: musl's malloc, sled's cache),
# thread stacks (anonymous maps of 2 MiB and a guard page: Rust's and tokio's default stack),
# the main thread's stack, the rest; and its threads. The smaps, smaps_rollup and status go to
# $3 for a closer look.
mem_report() {
  cp "/proc/$1/smaps" "$3/$2.smaps" 2>/dev/null
  cp "/proc/$1/smaps_rollup" "$3/$2.smaps_rollup" 2>/dev/null
  cp "/proc/$1/status" "$3/$2.status" 2>/dev/null
  awk '
    function hex(h,   i, n) { n = 0; for (i = 1; i <= length(h); i++)
      n = n * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return n }
    /^[0-9a-f]+-[0-9a-f]+ / {
      split($1, a, "-"); kb = (hex(a[2]) - hex(a[1])) / 1024
      if ($6 == "[heap]") k = "heap"
      else if ($6 == "[stack]") k = "stack"
      else if ($6 ~ /^\[/) k = "other"
      else if ($6 != "") k = "file"
      else if (kb >= 2048 && kb <= 2064) k = "stacks"
      else k = "heap"
      next
    }
    $1 == "Rss:" { rss[k] += $2 }
    END { printf "file=%d heap=%d stacks=%d stack=%d other=%d\n",
          rss["file"], rss["heap"], rss["stacks"], rss["stack"], rss["other"] }
  ' "$3/$2.smaps" | tr ' ' '\n' | while IFS== read -r k v; do result "$2.mem_${k}_kb" "$v"; done
  result "$2.threads" "$(ls "/proc/$1/task" | wc -l)"
}
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
# (busybox wget's own -T crashes it: timeout(1) bounds it instead)
get() { timeout 10 wget -q -O - "http://127.0.0.1:${2:-8686}$1"; }

# Waits up to $2 s for the HMI on port $1.
wait_hmi() {
  i=0
  while [ "$i" -lt "$(( $2 * 10 ))" ]; do
    get /healthz "$1" >/dev/null 2>&1 && return 0
    sleep 0.1; i=$((i + 1))
  done
  return 1
}
# Waits up to $2 s for a socket with receive filters on interface $1 (the agent's, once open).
wait_filters() {
  i=0
  while [ "$i" -lt "$(( $2 * 10 ))" ]; do
    awk -v d="$1" '$1 == d { f = 1 } END { exit !f }' /proc/net/can/rcvlist_fil && return 0
    sleep 0.1; i=$((i + 1))
  done
  return 1
}
# Starts the main agent (log appended to $1); sets AGENT.
start_agent() {
  "$AGENT_BIN" run --config "$CFG" --data-dir "$DATA" >> "$1" 2>&1 &
  AGENT=$!
}
# SIGTERM and wait; the exit status in RC (not in a subshell: only this shell can wait).
stop_pid() {
  kill -TERM "$1" 2>/dev/null
  wait "$1"
  RC=$?
}
# The odometer the HMI shows now, or "null".
odometer() { get /v1/vehicle "${1:-8686}" | sed -n 's/.*"odometer_km":\([^,}]*\).*/\1/p'; }
# Polls the HMI until the odometer is $1 (up to $2 s); prints the uptime when it was.
wait_odometer() {
  i=0
  while [ "$i" -lt "$(( $2 * 10 ))" ]; do
    awk -v a="$(odometer "${3:-8686}")" -v b="$1" \
      'BEGIN { exit !(a != "" && a != "null" && a + 0 == b + 0) }' && { up; return 0; }
    sleep 0.1; i=$((i + 1))
  done
  return 1
}
# VD (PGN 65248) from the engine (SA 0) with total distance $1 in 0.125 km steps, as cansend
# data: trip distance unknown, then the total, little-endian.
vd() { printf '18FEE000#FFFFFFFF%02X%02X%02X%02X' $(( $1 & 255 )) $(( ($1 >> 8) & 255 )) \
  $(( ($1 >> 16) & 255 )) $(( ($1 >> 24) & 255 )); }
filters() { cat /proc/net/can/rcvlist_fil > "$1"; }
dump_store() { "$AGENT_BIN" store --config "$CFG" --data-dir "$1" > "$2" 2>&1; echo $?; }

say "scenarios start; soak=${SOAK}s only=${ONLY:-all}"
result boot.scenarios_start "$(up)"
result guest.kernel "$(uname -r)"
result guest.cpus "$(nproc)"
result guest.mem_kb "$(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo)"
result guest.agent_version "$("$AGENT_BIN" --version 2>&1)"
result guest.agent_bytes "$(wc -c < "$AGENT_BIN")"
# The guest's userland is Debian's glibc only (for can-utils): no musl loader anywhere.
result guest.musl_loader "$(ls /lib/ld-musl* 2>/dev/null | wc -l)"
result guest.libs "$(ls /lib | grep -v modules | tr '\n' ' ')"
result trace.frames "$TRACE_FRAMES"

ip link add vcan0 type vcan
ip link add vcan1 type vcan
# vcan starts with the CAN FD MTU (72): vcan0 is made a classic bus, vcan1 stays FD.
ip link set vcan0 mtu 16
ip link set vcan1 mtu 72
ip link set vcan0 up
ip link set vcan1 up
result vcan0.mtu "$(cat /sys/class/net/vcan0/mtu)"
result vcan1.mtu "$(cat /sys/class/net/vcan1/mtu)"

# --- replay: the truck trace through canplayer, a flood of other ids from cangen ------------------
if wanted replay; then
  begin replay
  D="$OUT/replay"
  result replay.agent_exec "$(up)"
  start_agent "$D/agent.log"
  wait_hmi 8686 120 && result replay.hmi_ready "$(up)"
  wait_filters vcan0 60 && result replay.socket_open "$(up)"
  result replay.vmhwm_ready_kb "$(vm "$AGENT" VmHWM)"
  mem_report "$AGENT" replay.ready "$D"
  filters "$D/rcvlist_fil.before"
  cat /proc/net/can/rcvlist_all > "$D/rcvlist_all.before"
  tx0=$(stat_of vcan0 tx_packets)
  rx0=$(stat_of vcan0 rx_packets)
  # The flood: 29-bit ids counting up from 0, 8 bytes, as fast as the guest can send them.
  cangen vcan0 -e -I i -L 8 -D i -g 0 &
  FLOOD=$!
  ( wait_odometer 438978 120 > "$D/first-observation" ) &
  WATCH=$!
  result replay.canplayer_start "$(up)"
  canplayer -I "$TRACE" vcan0=can0
  result replay.canplayer_rc "$?"
  result replay.canplayer_end "$(up)"
  kill "$FLOOD"; wait "$FLOOD" 2>/dev/null
  wait "$WATCH"
  result replay.first_observation "$(cat "$D/first-observation")"
  sleep 2
  result replay.vcan0_tx "$(( $(stat_of vcan0 tx_packets) - tx0 ))"
  result replay.vcan0_rx "$(( $(stat_of vcan0 rx_packets) - rx0 ))"
  result replay.vcan0_rx_dropped "$(stat_of vcan0 rx_dropped)"
  filters "$D/rcvlist_fil"
  cat /proc/net/can/rcvlist_all > "$D/rcvlist_all"
  cat /proc/net/can/stats > "$D/can-stats"
  get /v1/vehicle > "$D/vehicle.json"
  get /v1/prompts > "$D/prompts.json"
  result replay.vmhwm_kb "$(vm "$AGENT" VmHWM)"
  mem_report "$AGENT" replay "$D"
  result replay.agent_alive "$(alive "$AGENT" && echo yes || echo no)"
  stop_pid "$AGENT"; AGENT=""
  result replay.agent_stop_rc "$RC"
  result replay.store_rc "$(dump_store "$DATA" "$D/store.jsonl")"
  end
fi

# --- fd: CAN FD frames on vcan1 (mtu 72) to an agent reading that interface -----------------------
if wanted fd; then
  begin fd
  D="$OUT/fd"
  "$AGENT_BIN" run --config "$FD_CFG" --data-dir /data/fd > "$D/agent.log" 2>&1 &
  FDA=$!
  wait_hmi 8687 120 && wait_filters vcan1 60 && result fd.socket_open "$(up)"
  # 64 bytes of an id the config does not read (11-bit: no filter of the agent can match it).
  cansend vcan1 123##1$(printf '%0128X' 0 | tr 0 A); result fd.send_other_rc "$?"
  # VD as an FD frame, 8 bytes, then 64 bytes with bit-rate switch (the rest 0xFF).
  cansend vcan1 "$(vd 3600000 | sed 's/#/##0/')"; result fd.send_vd8_rc "$?"
  sleep 1
  result fd.odometer_vd8 "$(odometer 8687)"
  cansend vcan1 "$(vd 3600001 | sed 's/#/##1/')$(printf '%0112X' 0 | tr 0 F)"
  result fd.send_vd64_rc "$?"
  sleep 1
  result fd.odometer_vd64 "$(odometer 8687)"
  # A classic frame on the FD interface.
  cansend vcan1 "$(vd 3600002)"; result fd.send_classic_rc "$?"
  sleep 1
  result fd.odometer_classic "$(odometer 8687)"
  filters "$D/rcvlist_fil"
  result fd.agent_alive "$(alive "$FDA" && echo yes || echo no)"
  stop_pid "$FDA"
  result fd.agent_stop_rc "$RC"
  end
fi

# --- ecu: the simulated passenger car on vcan2, the agent polling it over OBD-II and UDS ----------
# rapport-ecu-sim plays tests/headunit/guest/passenger-drive.toml with config/passenger.toml's
# ECUs; the agent (same config, HMI on 8688) asks through the kernel, ISO-TP flow control and
# all. candump keeps the bus's traffic for the host's test.
ECU_SIM=/opt/rapport/rapport-ecu-sim
PASSENGER=/etc/rapport/passenger.toml
# The active codes on the screen of the agent on port $1, sorted, comma-separated.
active_codes() { get /v1/vehicle "$1" | grep -o '"code":"[^"]*"' | cut -d'"' -f4 | sort | paste -sd, -; }
if wanted ecu && [ -x "$ECU_SIM" ]; then
  begin ecu
  D="$OUT/ecu"
  ip link add vcan2 type vcan
  ip link set vcan2 mtu 16
  ip link set vcan2 up
  candump -L vcan2 > "$D/vcan2.log" 2>&1 &
  CD=$!
  "$ECU_SIM" --config "$PASSENGER" --script /etc/rapport/passenger-drive.toml \
    --interface vcan2 > "$D/ecu-sim.log" 2>&1 &
  SIM=$!
  i=0
  while [ "$i" -lt 600 ] && ! grep -q '^rapport-ecu-sim: ' "$D/ecu-sim.log"; do
    sleep 0.1; i=$((i + 1))
  done
  result ecu.sim_ready "$(up)"
  "$AGENT_BIN" run --config "$PASSENGER" --data-dir /data/passenger > "$D/agent.log" 2>&1 &
  PA=$!
  wait_hmi 8688 120 && result ecu.hmi_ready "$(up)"
  # Everything the simulator serves on the screen: the odometer and the five codes.
  want_codes="P0133,P0133-1C,P0171,P0420,P0562-13"
  i=0
  while [ "$i" -lt 600 ]; do
    [ "$(odometer 8688)" = "23456.7" ] && [ "$(active_codes 8688)" = "$want_codes" ] && break
    sleep 0.1; i=$((i + 1))
  done
  result ecu.all_seen "$(up)"
  result ecu.odometer "$(odometer 8688)"
  result ecu.active_codes "$(active_codes 8688)"
  get /v1/vehicle 8688 > "$D/vehicle.json"
  result ecu.agent_alive "$(alive "$PA" && echo yes || echo no)"
  result ecu.vmhwm_kb "$(vm "$PA" VmHWM)"
  stop_pid "$PA"
  result ecu.agent_stop_rc "$RC"
  result ecu.sim_alive "$(alive "$SIM" && echo yes || echo no)"
  result ecu.sim_vmhwm_kb "$(vm "$SIM" VmHWM)"
  stop_pid "$SIM"
  result ecu.sim_stop_rc "$RC"
  kill "$CD" 2>/dev/null; wait "$CD" 2>/dev/null
  result ecu.store_rc "$("$AGENT_BIN" store --config "$PASSENGER" --data-dir /data/passenger \
    > "$D/store.jsonl" 2>&1; echo $?)"
  result ecu.vcan2_frames "$(wc -l < "$D/vcan2.log")"
  end
fi

# --- ifdown: the interface goes down, up, away and comes back while the agent runs ---------------
if wanted ifdown; then
  begin ifdown
  D="$OUT/ifdown"
  start_agent "$D/agent.log"
  wait_hmi 8686 120 && wait_filters vcan0 60
  cansend vcan0 "$(vd 3511824)"   # 438978.0 km, as the trace left it
  wait_odometer 438978 10 >/dev/null
  result ifdown.odometer_start "$(odometer)"
  ip link set vcan0 down
  result ifdown.down_at "$(up)"
  sleep 3
  result ifdown.alive_while_down "$(alive "$AGENT" && echo yes || echo no)"
  ip link set vcan0 up
  result ifdown.up_at "$(up)"
  sleep 3
  cansend vcan0 "$(vd 3511825)"   # 438978.125 km
  result ifdown.resumed_after_up "$(wait_odometer 438978.125 10 || echo no)"
  ip link del vcan0
  result ifdown.deleted_at "$(up)"
  sleep 3
  result ifdown.alive_while_deleted "$(alive "$AGENT" && echo yes || echo no)"
  ip link add vcan0 type vcan
  ip link set vcan0 up
  result ifdown.recreated_at "$(up)"
  wait_filters vcan0 10 && result ifdown.filters_back "$(up)"
  cansend vcan0 "$(vd 3511826)"   # 438978.25 km
  result ifdown.resumed_after_recreate "$(wait_odometer 438978.25 10 || echo no)"
  if alive "$AGENT"; then
    result ifdown.agent_alive yes
  else
    wait "$AGENT"
    result ifdown.agent_alive "no (exit status $?)"
  fi
  filters "$D/rcvlist_fil"
  # Whatever happened, the scenarios after this one need the agent running.
  alive "$AGENT" || { start_agent "$D/agent-restarted.log"; wait_hmi 8686 120; wait_filters vcan0 60; }
  # The missing interface at start: a config naming vcan7, which does not exist.
  sed 's|^interface = "vcan0"$|interface = "vcan7"|' "$CFG" > /tmp/missing.toml
  t=$(up)
  timeout -s KILL 60 "$AGENT_BIN" run --config /tmp/missing.toml --data-dir /data/missing \
    --hmi 127.0.0.1:8690 > "$D/missing.log" 2>&1
  result ifdown.missing_rc "$?"
  result ifdown.missing_exit_s "$(awk -v a="$t" -v b="$(up)" 'BEGIN { printf "%.2f", b - a }')"
  end
fi

# --- bad input: lines canplayer cannot send, frames of the wrong length, error frames ------------
if wanted badinput; then
  begin badinput
  D="$OUT/badinput"
  alive "$AGENT" || { start_agent "$D/agent.log"; wait_hmi 8686 120; wait_filters vcan0 60; }
  # One canplayer run per line: canplayer stops at the first line it cannot use.
  n=0
  while IFS= read -r line; do
    n=$((n + 1))
    printf '%s\n' "$line" > /tmp/bad.log
    tx=$(stat_of vcan0 tx_packets)
    canplayer -v -I /tmp/bad.log vcan0=can0 > /tmp/bad.out 2>&1
    rc=$?
    tx=$(( $(stat_of vcan0 tx_packets) - tx ))
    echo "line $n rc=$rc sent=$tx: $line => $(tr '\n' ' ' < /tmp/bad.out)" >> "$D/canplayer.txt"
    result "badinput.canplayer_line$n" "$rc"
  done <<'EOF'
(0.000000) can0 18FEE000#C72C010012963500
(0.010000) can0 ZZZ#zz
(0.020000) can0 123#112233445566778899
(0.030000) can0 18FEE000##0FFFFFFFF12963500
(0.040000) can7 18FEE000#C72C010012963500
this is not a candump line
(0.050000) can0 18FECA00#
EOF
  # Too short for their parameter groups: VD of 2 bytes, DM1 of 1, a remote VD with DLC 8 and
  # no data, a TP.CM cut short, a BAM announcing 1785 bytes in 255 packets then one packet out
  # of sequence, a TP.DT with no announcement.
  for f in 18FEE000#0102 18FECA00#FF 18FEE000#R8 18FECA00#R 1CECFF00#20FF \
           1CECFF00#20F906FFFFCAFE00 1CEBFF00#0911223344556677 1CEBFF31#0111223344556677; do
    cansend vcan0 "$f"; echo "cansend $f: $?" >> "$D/cansend.txt"
  done
  # Error frames: the controller-problem and bus-off classes. vcan has no controller, so a
  # bus-off can only be a frame someone sends, never a state of the interface.
  candump -L -n 2 "vcan0,#FFFFFFFF" > "$D/candump-errors.txt" 2>&1 &
  CD=$!
  sleep 0.5
  cansend vcan0 20000004#0004000000000000; echo "error frame (crtl): $?" >> "$D/cansend.txt"
  cansend vcan0 20000040#0000000000000000; echo "error frame (bus-off): $?" >> "$D/cansend.txt"
  sleep 1
  kill "$CD" 2>/dev/null; wait "$CD" 2>/dev/null
  result badinput.error_frames_seen_by_candump "$(grep -c '#' "$D/candump-errors.txt")"
  ls /sys/class/net/vcan0/ > "$D/vcan0-sysfs.txt"
  result badinput.vcan_can_state "$(cat /sys/class/net/vcan0/can_state 2>/dev/null || echo none)"
  sleep 1
  result badinput.agent_alive "$(alive "$AGENT" && echo yes || echo no)"
  get /v1/vehicle > "$D/vehicle.json"
  result badinput.odometer "$(odometer)"
  end
fi

# --- sigkill: the agent killed mid-write, three times; the store opens, nothing confirmed lost ----
if wanted sigkill; then
  begin sigkill
  D="$OUT/sigkill"
  confirmed=0
  for round in 1 2 3; do
    alive "$AGENT" || { start_agent "$D/agent.log"; wait_hmi 8686 120; wait_filters vcan0 60; }
    result "sigkill.round$round.hmi_ready" "$(get /healthz >/dev/null && echo yes || echo no)"
    # Traffic while it dies: the trace again, from the start.
    canplayer -I "$TRACE" vcan0=can0 &
    PLAY=$!
    sleep "$(( round ))"
    # A service from the screen: the HMI confirms it only once it is on disk. The kill comes
    # a random 0-0.3 s after the request was sent: before, during or after its write.
    ( timeout 10 wget -q -O "$D/service$round.json" --header 'Content-Type: application/json' \
        --post-data '{"items":["oil"]}' "$HMI/v1/service" && echo ok > "$D/service$round.ok" ) &
    POST=$!
    sleep "0.$(( ${RANDOM:-0} % 4 ))"
    kill -KILL "$AGENT"
    wait "$AGENT"
    result "sigkill.round$round.exit" "$?"
    wait "$POST"
    if [ -f "$D/service$round.ok" ]; then
      confirmed=$((confirmed + 1))
      result "sigkill.round$round.service" confirmed
    else
      result "sigkill.round$round.service" unconfirmed
    fi
    kill "$PLAY" 2>/dev/null; wait "$PLAY" 2>/dev/null
    AGENT=""
    result "sigkill.round$round.store_rc" "$(dump_store "$DATA" "$D/store$round.jsonl")"
  done
  result sigkill.confirmed "$confirmed"
  result sigkill.services_stored "$(sed -n 's/.*"kind":"vehicle".*"services":\([0-9]*\).*/\1/p' "$D/store3.jsonl")"
  start_agent "$D/agent.log"
  result sigkill.restart_hmi "$(wait_hmi 8686 120 && echo yes || echo no)"
  wait_filters vcan0 60
  end
fi

# --- soak: a saturated bus, HMI on, sync to nowhere, for $SOAK s; the agent's peak memory -------
if wanted soak; then
  begin soak
  D="$OUT/soak"
  alive "$AGENT" || { start_agent "$D/agent.log"; wait_hmi 8686 120; wait_filters vcan0 60; }
  result soak.seconds "$SOAK"
  result soak.vmhwm_start_kb "$(vm "$AGENT" VmHWM)"
  tx0=$(stat_of vcan0 tx_packets)
  canplayer -l i -I "$TRACE" vcan0=can0 &
  PLAY=$!
  cangen vcan0 -e -I i -L 8 -D i -g 0 &
  FLOOD=$!
  t0=$(up)
  echo "uptime VmRSS_kB VmHWM_kB vcan0_tx" > "$D/samples.txt"
  while awk -v a="$t0" -v b="$(up)" -v s="$SOAK" 'BEGIN { exit !(b - a < s) }'; do
    sleep 10
    get /v1/vehicle > /dev/null
    echo "$(up) $(vm "$AGENT" VmRSS) $(vm "$AGENT" VmHWM) $(stat_of vcan0 tx_packets)" >> "$D/samples.txt"
  done
  kill "$FLOOD" "$PLAY"; wait "$FLOOD" "$PLAY" 2>/dev/null
  result soak.vcan0_tx "$(( $(stat_of vcan0 tx_packets) - tx0 ))"
  result soak.duration_s "$(awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.0f", b - a }')"
  result soak.vmhwm_kb "$(vm "$AGENT" VmHWM)"
  result soak.vmrss_kb "$(vm "$AGENT" VmRSS)"
  mem_report "$AGENT" soak "$D"
  filters "$D/rcvlist_fil"
  cat /proc/net/can/stats > "$D/can-stats"
  get /v1/vehicle > "$D/vehicle.json"
  result soak.agent_alive "$(alive "$AGENT" && echo yes || echo no)"
  stop_pid "$AGENT"; AGENT=""
  result soak.agent_stop_rc "$RC"
  result soak.store_rc "$(dump_store "$DATA" "$D/store.jsonl")"
  end
fi

alive "$AGENT" && stop_pid "$AGENT"
result done "$(up)"
