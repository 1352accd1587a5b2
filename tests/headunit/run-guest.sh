#!/usr/bin/env bash
# Boots the emulated head unit built by tests/headunit/build-image.sh: qemu-system-aarch64,
# machine virt, a Cortex-A53, 512 MiB, TCG (no KVM), NO network device. The guest's init runs
# tests/headunit/guest/scenarios.sh and powers off; its evidence comes back in SHARE_DIR (a
# virtio 9p folder) and its serial console is copied to SHARE_DIR/console.log.
#
#   tests/headunit/run-guest.sh SHARE_DIR [NAME=VALUE ...]
#
# Each NAME=VALUE goes on the kernel command line as rapport.NAME=VALUE for the scenario script
# (soak=SECONDS: how long the footprint run lasts; only=A,B,...: run those scenarios only).
# HEADUNIT_SMP (default 2) sets the guest's cores, HEADUNIT_TIMEOUT (default 1200 s) the
# wall-clock limit after which qemu is killed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${HEADUNIT_DIR:-$ROOT/target/headunit}"
[ "$#" -ge 1 ] || { echo "usage: $0 SHARE_DIR [NAME=VALUE ...]" >&2; exit 2; }
SHARE="$1"; shift
params=""
for p in "$@"; do params="$params rapport.$p"; done
command -v qemu-system-aarch64 >/dev/null || { echo "qemu-system-aarch64 not found (apt-get install qemu-system-arm)" >&2; exit 1; }
for f in vmlinuz initrd.img; do
  [ -f "$OUT/$f" ] || { echo "no $OUT/$f: run tests/headunit/build-image.sh first" >&2; exit 1; }
done
mkdir -p "$SHARE"
SHARE="$(cd "$SHARE" && pwd)"
date +%s.%N > "$SHARE/host-boot-start"

# security_model=none: the guest's root writes files the host user can read and remove.
set +e
timeout --signal=KILL "${HEADUNIT_TIMEOUT:-1200}" qemu-system-aarch64 \
  -M virt -cpu cortex-a53 -m 512M -smp "${HEADUNIT_SMP:-2}" \
  -nic none -display none -monitor none -serial stdio -no-reboot \
  -kernel "$OUT/vmlinuz" -initrd "$OUT/initrd.img" \
  -append "console=ttyAMA0 rdinit=/init panic=-1 quiet$params" \
  -virtfs "local,path=$SHARE,mount_tag=share,security_model=none,id=share" \
  </dev/null 2>&1 | tee "$SHARE/console.log"
status="${PIPESTATUS[0]}"
set -e
date +%s.%N > "$SHARE/host-boot-end"
exit "$status"
