#!/usr/bin/env bash
# CI's fuzzing step: builds every fuzz crate once (`cargo +nightly fuzz build` in shared/fuzz,
# agent/fuzz and cloud/fuzz), then runs each target from its committed corpus
# (`<crate>/fuzz/corpus/<target>/`, read only: new inputs go to a scratch folder) for a fixed
# time. Budget: the runs, without the build, stay within 5 minutes: 16 targets at
# FUZZ_SECONDS=8 s each is 128 s, plus each target's start-up and exit (under 1 s on an idle
# runner; up to 7 s each on the loaded 2-core VM, see docs/reliability.md). One input running
# over FUZZ_TIMEOUT=2 s is a finding like a crash (the finding's bar is 1 s on an idle machine;
# 2 s leaves room for a loaded CI runner). Any crash, panic, timeout or out-of-memory fails the step, after every
# target ran; the input is kept in target/fuzz-artifacts/<target>/. The long campaign is in
# docs/reliability.md, section 1.
#
# Without a nightly toolchain it says so and succeeds (the targets need -Zsanitizer).
# Installs cargo-fuzz if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-8}
timeout=${FUZZ_TIMEOUT:-2}
crates=(shared agent cloud)

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "no nightly toolchain: fuzz targets not built nor run"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# One target dir for the three crates, so the dependencies they share build once; no
# sanitizer (`-s none`): the code under test is safe Rust, where AddressSanitizer finds
# nothing a panic would not, and it doubles the build and slows every execution. The long
# campaign (docs/reliability.md) uses the default, address.
root=$PWD
fuzz_target_dir="$root/target/fuzz"
for crate in "${crates[@]}"; do
  printf '\n== fuzz build: %s/fuzz\n' "$crate"
  (cd "$crate/fuzz" && cargo +nightly fuzz build -s none --target-dir "$fuzz_target_dir")
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
start=$SECONDS
for crate in "${crates[@]}"; do
  bin_dir="$fuzz_target_dir/x86_64-unknown-linux-gnu/release"
  for target in $(cd "$crate/fuzz" && cargo +nightly fuzz list); do
    corpus="$root/$crate/fuzz/corpus/$target"
    artifacts="$root/target/fuzz-artifacts/$target"
    mkdir -p "$scratch/$target" "$corpus" "$artifacts"
    log="$scratch/$target.log"
    if "$bin_dir/$target" "$scratch/$target" "$corpus" \
      -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1; then
      execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
      cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
      printf '%-18s ok    %8s execs  %s\n' "$target" "${execs:-?}" "$cov"
    else
      printf '%-18s FAILED (input kept in %s)\n' "$target" "$artifacts"
      grep -E 'ERROR|panicked|SUMMARY|Test unit written' "$log" | head -20 || true
      failed+=("$target")
    fi
  done
done
echo "fuzz runs took $((SECONDS - start)) s (budget 300 s)"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz findings in: ${failed[*]}"
  exit 1
fi
