#!/usr/bin/env bash
# Strata side by side with peer engines: installs what the build needs, builds the harness in
# release mode, runs every workload on every engine, and writes the results to bench/results/
# and the charts to docs/performance/. Arguments are passed to the harness (for instance
# `bench/run.sh --reps 1 --num 100000` for a quicker run); see `--help`.
set -euo pipefail
cd "$(dirname "$0")"
bench=$(pwd)

# RocksDB from Debian (7.8) instead of the rocksdb crate's 25-minute C++ build; bindgen needs
# libclang to generate the C API bindings.
need=()
dpkg -s librocksdb-dev >/dev/null 2>&1 || need+=(librocksdb-dev)
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi
export ROCKSDB_LIB_DIR=/usr/lib/x86_64-linux-gnu
export ROCKSDB_INCLUDE_DIR=/usr/include

cargo build --release -j "${BENCH_JOBS:-2}"
exec "$bench/target/release/strata-bench" \
  --out "$bench/results" --charts "$bench/../docs/performance" "$@"
