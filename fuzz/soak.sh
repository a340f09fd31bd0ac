#!/usr/bin/env bash
# Fuzzing soak (docs/testing.md, "Fuzzing"; figures in docs/reliability.md): fuzzes one target
# for a wall-time budget at the lowest CPU priority and appends one line to fuzz/soak.log:
#
#   date  commit  target  wall_s  cpu_s  executions  result
#
# cpu_s is user + system time of the fuzzer process, the figure issue 15's "CPU-hours per
# decoder" counts (wall time overstates it when the machine is busy). It builds the target
# first (`cargo fuzz build`: AddressSanitizer, debug assertions), so the commit recorded is the
# code fuzzed ("-dirty" if the tree had uncommitted changes).
#
#   fuzz/soak.sh TARGET SECONDS
#
# Stop a round early with SIGINT to the fuzzer, for example before a benchmark:
#   pkill -INT -f 'release/TARGET '
# libFuzzer then exits cleanly and the line is still written (result "interrupted"). Do not
# pause it with SIGSTOP: libFuzzer's per-input alarm counts wall time and reports the pause as
# a timeout.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/soak.sh TARGET SECONDS}
seconds=${2:?usage: fuzz/soak.sh TARGET SECONDS}
binary=target/x86_64-unknown-linux-gnu/release/$target
RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz build "$target" >/dev/null 2>&1 ||
  { echo "cargo fuzz build $target failed" >&2; exit 2; }
commit=$(git rev-parse --short HEAD)
# This log itself is tracked: changes to it do not make the fuzzed code "dirty".
git diff --quiet HEAD -- ':(top)' ':(top,exclude)fuzz/soak.log' || commit+=-dirty

mkdir -p "corpus/$target" "artifacts/$target"
dirs=("corpus/$target")
[[ -d seeds/$target ]] && dirs+=("seeds/$target")
extra=()
[[ -f dict/$target.dict ]] && extra+=("-dict=dict/$target.dict")
log=$(mktemp)
times=$(mktemp)
trap 'rm -f "$log" "$times"' EXIT

# The limits are fuzz/ci.sh's, except the per-input timeout: 30 s instead of 10 s, because a
# process at nice 19 on a busy machine can be starved long enough to trip 10 s.
status=0
/usr/bin/time -f '%e %U %S' -o "$times" nice -n 19 "$binary" "${dirs[@]}" \
  -rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=30 -max_total_time="$seconds" \
  -print_final_stats=1 -artifact_prefix="artifacts/$target/" "${extra[@]}" >"$log" 2>&1 || status=$?

read -r wall user sys < <(tail -1 "$times")
cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f", u + s }')
execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{ print $2 }' | tail -1)
# libFuzzer exits 0 at the end of its time budget and 72 when interrupted; anything else is a
# crash, leak, timeout or out-of-memory, with the input in artifacts/TARGET/.
case $status in
  0) result=ok ;;
  72) result=interrupted ;;
  *) result="FAILED($status)"; tail -60 "$log" ;;
esac
printf '%s\t%s\t%s\t%.0f\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$commit" \
  "$target" "$wall" "$cpu" "${execs:-0}" "$result" | tee -a soak.log
[[ $result != FAILED* ]]
