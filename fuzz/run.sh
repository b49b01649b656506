#!/usr/bin/env bash
# Runs every fuzz target (or those named) for RUNS inputs each, one after
# the other, one process on one core, with a 2 MiB stack like a tokio
# worker's. New corpus entries go to fuzz/work/<target> (not committed);
# the committed seeds in fuzz/corpus/<target> are read, never written.
# Each target's libFuzzer log is fuzz/work/<target>.log.
#
#   fuzz/run.sh                      # all targets, 1,000,000 inputs each
#   RUNS=100000 fuzz/run.sh raft_rpc # one target, fewer inputs
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${RUNS:-1000000}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -s none
ulimit -s 2048
for t in "${targets[@]}"; do
  mkdir -p "work/$t"
  start=$(date +%s)
  nice -n 5 cargo +nightly fuzz run -s none "$t" "$PWD/work/$t" "$PWD/corpus/$t" -- \
    -runs="$RUNS" -print_final_stats=1 >"work/$t.log" 2>&1 || {
    echo "$t: FAILED, see fuzz/work/$t.log and fuzz/artifacts/$t/"; tail -30 "work/$t.log"; exit 1; }
  echo "$t: $(( $(date +%s) - start )) s; $(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "work/$t.log" | tail -1)"
done
