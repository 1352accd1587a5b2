#!/usr/bin/env bash
# Assembles the emulated head unit from Debian's packages: Debian 12's arm64 kernel and an
# initramfs holding busybox-static, can-utils (with the ARM cross glibc it links against), a
# few kernel modules (CAN, vcan, virtio 9p), the release agent, its configs, the truck trace,
# the ECU simulator with the passenger car's config and drive, and the guest's scenario script
# (tests/headunit/guest/). tests/headunit/run-guest.sh boots it.
#
#   tests/headunit/build-image.sh [AGENT_BINARY] TRACE
#
# AGENT_BINARY defaults to the head unit's static build (`cargo build --release -p
# rapport-agent --no-default-features --target aarch64-unknown-linux-musl`),
# target/aarch64-unknown-linux-musl/release/rapport-agent. TRACE is the truck's candump trace
# (screen form, as the shared data holds it); it goes into the image only, never into the
# repository. ECU_SIM names the ECU simulator (default: rapport-ecu-sim beside the default
# agent, built by `cargo build --release -p rapport-agent --bin rapport-ecu-sim --target
# aarch64-unknown-linux-musl`); without it the image has no ECU scenario. Everything
# downloaded and built stays under target/headunit/ (HEADUNIT_DIR overrides): debs/ is the
# package cache, reused while it holds the three packages; vmlinuz and initrd.img are the
# outputs.
#
# HEADUNIT_TRY_CONFIG set: the image for tests/headunit/try.sh instead — that config (and the
# DBC file it names) on an interface named as in the config, TRACE replayed on it (candump -l
# or screen form; HEADUNIT_TRY_INTERFACE names the trace's interface to replay), and the guest
# runs tests/headunit/guest/try.sh instead of the scenarios.
#
# Host packages: cpio, kmod (depmod), awk, libc6-arm64-cross (the guest's glibc). Downloading
# arm64 packages needs the arm64 architecture added to dpkg: done here, as root, once.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/tests/headunit"
OUT="${HEADUNIT_DIR:-$ROOT/target/headunit}"
if [ "$#" -eq 2 ]; then
  AGENT="$1"; TRACE="$2"
elif [ "$#" -eq 1 ]; then
  AGENT="$ROOT/target/aarch64-unknown-linux-musl/release/rapport-agent"; TRACE="$1"
else
  echo "usage: $0 [AGENT_BINARY] TRACE" >&2; exit 2
fi
CROSS_LIB=/usr/aarch64-linux-gnu/lib
# The modules the guest loads (tests/headunit/guest/init); depmod adds what they depend on.
MODULES="can can-raw can-dev vcan virtio_pci 9pnet_virtio 9p"
# Where they and their dependencies live in the kernel package.
MODULE_PATHS="net/can/* drivers/net/can/dev/* drivers/net/can/vcan.ko drivers/virtio/* net/9p/*
  fs/9p/* fs/netfs/* fs/fscache/*"
CAN_TOOLS="candump canplayer cangen cansend"

t0=$SECONDS
say() { printf '[build-image %3ss] %s\n' "$((SECONDS - t0))" "$*"; }
die() { echo "build-image: $*" >&2; exit 1; }

for tool in apt-get dpkg-deb cpio depmod awk; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install cpio kmod)"
done
[ -f "$AGENT" ] || die "no agent binary at $AGENT"
[ -f "$TRACE" ] || die "no trace at $TRACE"
[ -f "$CROSS_LIB/libc.so.6" ] || die "no $CROSS_LIB/libc.so.6 (apt-get install libc6-arm64-cross)"

# --- packages (cached) -------------------------------------------------------------------------
mkdir -p "$OUT/debs"
have() { compgen -G "$OUT/debs/$1" >/dev/null; }
if ! have 'linux-image-*-arm64_*_arm64.deb' || ! have 'busybox-static_*_arm64.deb' \
   || ! have 'can-utils_*_arm64.deb'; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    [ "$(id -u)" = 0 ] || die "run once as root: dpkg --add-architecture arm64 && apt-get update"
    say "dpkg --add-architecture arm64 && apt-get update"
    dpkg --add-architecture arm64
    apt-get update -qq
  fi
  # linux-image-arm64 is a metapackage: its dependency names the versioned kernel.
  kernel_pkg="$(apt-cache depends linux-image-arm64:arm64 2>/dev/null \
    | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
  if [ -z "$kernel_pkg" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    kernel_pkg="$(apt-cache depends linux-image-arm64:arm64 \
      | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
  fi
  [ -n "$kernel_pkg" ] || die "apt knows no linux-image-arm64:arm64 (apt-get update?)"
  say "apt-get download $kernel_pkg busybox-static:arm64 can-utils:arm64"
  rm -f "$OUT"/debs/*.deb
  # apt's _apt user may not write here; downloading as the caller is what we want anyway.
  (cd "$OUT/debs" && apt-get download -q "${kernel_pkg%:arm64}:arm64" busybox-static:arm64 \
    can-utils:arm64 2>&1 | grep -v 'unsandboxed' || true)
  have 'linux-image-*-arm64_*_arm64.deb' || die "kernel download failed"
fi
for deb in "$OUT"/debs/*.deb; do
  dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb"
done > "$OUT/versions.txt"
say "packages: $(paste -sd';' "$OUT/versions.txt")"

# --- unpack (once per package set) -------------------------------------------------------------
stamp="$(cat "$OUT/versions.txt")"
if [ ! -f "$OUT/pkg/.stamp" ] || [ "$(cat "$OUT/pkg/.stamp")" != "$stamp" ]; then
  say "unpacking the packages"
  rm -rf "$OUT/pkg"
  mkdir -p "$OUT/pkg"
  for deb in "$OUT"/debs/*.deb; do
    case "$(basename "$deb")" in
      # Of the kernel (400 MB unpacked), only the image and the module folders the guest's
      # modules and their dependencies live in; depmod below runs over this subset.
      # (set -f: the patterns are tar's, not the shell's.)
      linux-image-*)
        (set -f; dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$OUT/pkg" --wildcards \
          './boot/vmlinuz-*' './lib/modules/*/modules.order' './lib/modules/*/modules.builtin*' \
          $(for p in $MODULE_PATHS; do printf "./lib/modules/*/kernel/%s " "$p"; done)) ;;
      *) dpkg-deb -x "$deb" "$OUT/pkg" ;;
    esac
  done
  printf '%s\n' "$stamp" > "$OUT/pkg/.stamp"
fi
kver="$(ls "$OUT/pkg/lib/modules" | head -1)"
[ -n "$kver" ] || die "no modules in the kernel package"
cp "$OUT/pkg/boot/vmlinuz-$kver" "$OUT/vmlinuz"

# --- the initramfs tree ------------------------------------------------------------------------
R="$OUT/rootfs"
rm -rf "$R"
mkdir -p "$R"/{bin,usr/bin,lib,etc/rapport,opt/rapport,data,proc,sys,dev,tmp,share,var/trace}
cp "$OUT/pkg/bin/busybox" "$R/bin/busybox"
for t in $CAN_TOOLS; do cp "$OUT/pkg/usr/bin/$t" "$R/usr/bin/$t"; done
# can-utils is dynamically linked against glibc: the loader and libc, nothing else.
cp -L "$CROSS_LIB/ld-linux-aarch64.so.1" "$CROSS_LIB/libc.so.6" "$R/lib/"

# Modules: the listed ones and their dependencies (from a depmod over the whole package).
mods="$OUT/pkg/lib/modules/$kver"
[ -f "$mods/modules.dep" ] || depmod -b "$OUT/pkg" "$kver"
mkdir -p "$R/lib/modules/$kver"
cp "$mods"/modules.{order,builtin,builtin.modinfo} "$R/lib/modules/$kver/"
wanted=""
for m in $MODULES; do
  line="$(grep -E "(^|/)${m}\.ko(\.[a-z]+)?:" "$mods/modules.dep")" || die "no module $m in $kver"
  wanted="$wanted ${line/:/}"
done
for f in $(printf '%s\n' $wanted | sort -u); do
  mkdir -p "$R/lib/modules/$kver/$(dirname "$f")"
  cp "$mods/$f" "$R/lib/modules/$kver/$f"
done
depmod -b "$R" "$kver"

# The agent, its configs (the commercial example, on the guest's vcan interfaces, with the data
# on the guest's tmpfs and a sync pointed at a loopback port where nothing listens), and the
# trace in canplayer's log form (the shared file is candump's screen form).
cp "$AGENT" "$R/opt/rapport/rapport-agent"
chmod 755 "$R/opt/rapport/rapport-agent"
# ' (000.005001)  can0  18FEDF00   [8]  8A A0 …' -> '(000.005001) can0 18FEDF00#8AA0…'; a
# `candump -l` line ('(1.000000) can0 123#11') is canplayer's form already.
log_form() {
  awk '$3 ~ /#/ { print $1, $2, $3; next }
       NF >= 4 { d = ""; for (i = 5; i <= NF; i++) d = d $i; print $1, $2, $3 "#" d }' "$1"
}
if [ -n "${HEADUNIT_TRY_CONFIG:-}" ]; then
  # tests/headunit/try.sh: the engineer's config on its own interface name, their trace.
  cfg="$HEADUNIT_TRY_CONFIG"
  [ -f "$cfg" ] || die "no config at $cfg"
  iface="$(awk -F'"' '/^interface *=/ { print $2; exit }' "$cfg")"
  [ -n "$iface" ] || die "$cfg: no interface = \"...\" line"
  dbc="$(awk -F'"' '/^file *=/ { print $2; exit }' "$cfg")"
  sed -e 's|^path *=.*|path = "/data/agent"|' \
      -e 's|^listen *=.*|listen = "127.0.0.1:8686"|' \
      -e 's|^file *=.*|file = "vehicle.dbc"|' "$cfg" > "$R/etc/rapport/agent.toml"
  if [ -n "$dbc" ]; then
    case "$dbc" in /*) ;; *) dbc="$(dirname "$cfg")/$dbc" ;; esac
    [ -f "$dbc" ] || die "$cfg names the DBC file $dbc, which is not there"
    cp "$dbc" "$R/etc/rapport/vehicle.dbc"
  fi
  printf 'interface=%s\ntrace_interface=%s\n' "$iface" "${HEADUNIT_TRY_INTERFACE:-$iface}" \
    > "$R/etc/rapport/try.env"
  log_form "$TRACE" > "$R/var/trace/normal.log"
  cp "$HERE/guest/try.sh" "$R/opt/rapport/main.sh"
else
  commercial="$ROOT/config/commercial.toml"
  grep -q '^interface = "can0"$' "$commercial" || die "config/commercial.toml: no interface = \"can0\""
  grep -q '^listen = "127.0.0.1:8686"$' "$commercial" || die "config/commercial.toml: no HMI listen line"
  sed -e 's|^interface = "can0"$|interface = "vcan0"|' \
      -e 's|^path = .*|path = "/data/agent"|' "$commercial" > "$R/etc/rapport/agent.toml"
  cat >> "$R/etc/rapport/agent.toml" <<'EOF2'

# Head-unit test: nothing listens on this loopback port (the guest has no network at all).
[sync]
broker = "mqtt://127.0.0.1:1884"
EOF2
  sed -e 's|^interface = "can0"$|interface = "vcan1"|' \
      -e 's|^path = .*|path = "/data/fd"|' \
      -e 's|^listen = "127.0.0.1:8686"$|listen = "127.0.0.1:8687"|' \
      "$commercial" > "$R/etc/rapport/fd.toml"
  # The ECU simulator and the passenger car it plays (config/passenger.toml on vcan2, its DBC
  # beside it, the drive in tests/headunit/guest/passenger-drive.toml); the agent reads it
  # with the same config.
  ECU_SIM="${ECU_SIM:-$(dirname "$AGENT")/rapport-ecu-sim}"
  if [ -f "$ECU_SIM" ]; then
    passenger="$ROOT/config/passenger.toml"
    grep -q '^file = "../agent/fixtures/passenger.dbc"$' "$passenger" \
      || die "config/passenger.toml: no DBC file line"
    sed -e 's|^interface = "can0"$|interface = "vcan2"|' \
        -e 's|^path = .*|path = "/data/passenger"|' \
        -e 's|^listen = "127.0.0.1:8686"$|listen = "127.0.0.1:8688"|' \
        -e 's|^file = .*|file = "passenger.dbc"|' "$passenger" > "$R/etc/rapport/passenger.toml"
    cp "$ROOT/agent/fixtures/passenger.dbc" "$R/etc/rapport/passenger.dbc"
    cp "$HERE/guest/passenger-drive.toml" "$R/etc/rapport/passenger-drive.toml"
    cp "$ECU_SIM" "$R/opt/rapport/rapport-ecu-sim"
    chmod 755 "$R/opt/rapport/rapport-ecu-sim"
  else
    say "no ECU simulator at $ECU_SIM: the image has no ECU scenario"
  fi
  log_form "$TRACE" > "$R/var/trace/normal.log"
  cp "$HERE/guest/scenarios.sh" "$R/opt/rapport/main.sh"
fi
cp "$HERE/guest/init" "$R/init"
chmod 755 "$R/init" "$R/opt/rapport/main.sh"

# Uncompressed: the emulated kernel unpacks it faster than it would gunzip it.
(cd "$R" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) > "$OUT/initrd.img"
say "image: $OUT/vmlinuz ($(stat -c %s "$OUT/vmlinuz") B, kernel $kver)," \
  "$OUT/initrd.img ($(stat -c %s "$OUT/initrd.img") B)"
