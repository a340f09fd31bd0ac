#!/usr/bin/env bash
# Fuzzing in CI (called by .ci/run; see docs/testing.md, "Fuzzing"):
#   1. installs cargo-fuzz if missing (about 4 minutes, once per machine);
#   2. builds every target (AddressSanitizer, debug assertions; RUSTC_BOOTSTRAP=1 on stable);
#   3. replays each target's committed seeds (fuzz/seeds/TARGET, with STRATA_FUZZ_REQUIRE_OPEN=1
#      so a seed database that no longer opens fails) and its local corpus (fuzz/corpus/TARGET,
#      not in git) once;
#   4. fuzzes each target for STRATA_FUZZ_SECONDS (default 30), STRATA_FUZZ_JOBS targets at a
#      time (default 2, one per core of the CI machine), under an RSS limit, a single-allocation
#      limit and a per-input timeout.
# Fails on any crash, leak, timeout or out-of-memory; the input is in fuzz/artifacts/TARGET/
# and the log tail is printed. Reproduce with
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")"
seconds=${STRATA_FUZZ_SECONDS:-30}
jobs=${STRATA_FUZZ_JOBS:-2}
# Every input runs in well under a second; 10 s is a hang. No input legitimately needs more
# than a few MiB, so a 256 MiB single allocation is a length field trusted too far.
limits=(-rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=10)
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

start=$(date +%s)
mapfile -t targets < <(cargo fuzz list)
echo "targets (${#targets[@]}): ${targets[*]}"
cargo fuzz build
echo "build: $(( $(date +%s) - start ))s"

# Extra libFuzzer arguments for a target (a dictionary of its format's magic numbers).
extra() { if [[ -f "dict/$1.dict" ]]; then echo "-dict=dict/$1.dict"; fi; }

logs=$(mktemp -d)
failed=()
for t in "${targets[@]}"; do
  for dir in "seeds/$t" "corpus/$t"; do
    [[ -d "$dir" ]] || continue
    mapfile -t inputs < <(find "$dir" -type f | sort)
    (( ${#inputs[@]} )) || continue
    require=0; [[ $dir == seeds/* ]] && require=1
    if STRATA_FUZZ_REQUIRE_OPEN=$require cargo fuzz run "$t" "${inputs[@]}" -- "${limits[@]}" \
        >"$logs/replay-$t.log" 2>&1; then
      echo "replay $dir: ${#inputs[@]} inputs ok"
    else
      echo "replay $dir: FAILED"; tail -40 "$logs/replay-$t.log"; failed+=("replay $t")
    fi
  done
done
echo "replay: $(( $(date +%s) - start ))s"

fuzz_one() {
  local t=$1
  mkdir -p "corpus/$t"
  local dirs=("corpus/$t")
  [[ -d "seeds/$t" ]] && dirs+=("seeds/$t")
  # shellcheck disable=SC2046
  cargo fuzz run "$t" "${dirs[@]}" -- -max_total_time="$seconds" "${limits[@]}" $(extra "$t") \
    >"$logs/fuzz-$t.log" 2>&1
}
running=()
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  running+=("$!:$t")
  if (( ${#running[@]} >= jobs )); then
    entry=${running[0]}; running=("${running[@]:1}")
    if ! wait "${entry%%:*}"; then failed+=("fuzz ${entry#*:}"); fi
  fi
done
for entry in "${running[@]}"; do
  if ! wait "${entry%%:*}"; then failed+=("fuzz ${entry#*:}"); fi
done
for t in "${targets[@]}"; do
  summary=$(grep -E '^Done [0-9]+ runs' "$logs/fuzz-$t.log" | tail -1 || true)
  echo "fuzz $t: ${summary:-no summary (see below)}"
done
for f in "${failed[@]}"; do
  echo "== $f failed"
  # Replay failures were printed above; print the fuzzing log of the others.
  if [[ $f == fuzz* ]]; then tail -60 "$logs/fuzz-${f#fuzz }.log"; fi
done
echo "fuzz total: $(( $(date +%s) - start ))s"
rm -rf "$logs"
(( ${#failed[@]} == 0 ))
