#!/usr/bin/env bash
# Price the timing cuts of scripts/timing_cuts.py against the uncut kernels in one run,
# alternating (rep by rep: f16 and aura4v4 uncut, then every cut), GPU loop tok/s:
#
#   bash scripts/bench_cuts.sh BENCH CUTS_DIR [REPS] [DEPTHS] [CUT ...]
#
# BENCH: a built examples/bench (e.g. target/release/examples/bench); CUTS_DIR: what
# timing_cuts.py wrote; REPS (default 3); DEPTHS (default 4096,16384); the cuts to run
# (default: every directory under CUTS_DIR). Prints "depth kv path tok/s" rows per run.
# Env: RUNS (median of, default 5), TOKENS (per run, default 256).
set -euo pipefail
if [ $# -lt 2 ] || [ "$1" = "--help" ]; then
  sed -n '2,10p' "$0"
  exit 2
fi
bench=$1 cuts=$2 reps=${3:-3} depths=${4:-4096,16384}
shift $(( $# < 4 ? $# : 4 ))
names=("$@")
[ ${#names[@]} -gt 0 ] || names=($(ls "$cuts"))
common=(--backend vulkan --synthetic smollm2-135m --loops gpu --prefill 0 --runs "${RUNS:-5}" --tokens "${TOKENS:-256}" --depths "$depths")
run() {
  echo "### ${AURA_WGSL_DIR:-uncut} ${*}"
  "$bench" "${common[@]}" "$@" 2>&1 | grep "^| [0-9]" | awk -F'|' '{print $2, $3, $4, $7}'
}
for rep in $(seq "$reps"); do
  run --schemes f16,aura4v4
  for n in "${names[@]}"; do
    AURA_WGSL_DIR="$cuts/$n" run --schemes aura4v4
  done
done
