#!/bin/sh
# Allocations per frame on the decode path (issue 3, part 8), without unsafe code: runs the
# `realtime` bench binary under valgrind's DHAT twice — warm-up only, then warm-up plus 15 s
# of mixed traffic — and divides the difference in allocated blocks by the frames decoded.
# With a kind argument (dbc_cluster_1, obd_isotp, j1939_read, other_11bit, other_j1939) the
# measured part holds only frames of that kind.
# Usage: agent/benches/allocs.sh [kind]   (from the workspace root; needs valgrind)
set -eu
cargo bench -p rapport-agent --bench realtime --no-run 2>/dev/null
bin=$(ls -t target/release/deps/realtime-* | grep -v '\.d$' | head -n 1)
blocks() {
    RAPPORT_BENCH_ALLOC_PHASE=$1 RAPPORT_BENCH_ALLOC_KIND=${2:-} \
        valgrind --tool=dhat --dhat-out-file=/dev/null "$bin" 2>&1 >/tmp/allocs.$$.out |
        sed -n 's/.*Total: .* in \([0-9,]*\) blocks.*/\1/p' | tr -d ,
}
warm=$(blocks warm "${1:-}")
all=$(blocks all "${1:-}")
frames=$(sed -n 's/^measured_frames=//p' /tmp/allocs.$$.out)
sed -n 's/^warnings=/warnings: /p' /tmp/allocs.$$.out
rm -f /tmp/allocs.$$.out
echo "kind=${1:-mixed} frames=$frames blocks_warm=$warm blocks_all=$all" \
    "allocs_per_frame=$(echo "scale=4; ($all - $warm) / $frames" | bc)"
