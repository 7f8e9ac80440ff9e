#!/bin/bash
# Runs the whole mini comparison of docs/results.md from the repository root:
# the teacher, then every method recipe for seeds 1, 2 and 3, JOBS runs at a
# time with one thread each. A run whose results.json exists is skipped, and
# an interrupted one continues from its last saved state (--resume; one killed
# before its first save starts again, --overwrite), so the
# script can simply be run again.
#
#   STSIM_DATA=../shared/data recipes/mini/run-comparison.sh [BUILD_DIR] [JOBS]
#
# Prerequisites: pretrain-bert.ini, pretrain-bert-2.ini and
# pretrain-bert-gen.ini have been run (docs/results.md gives their times).
set -euo pipefail
build=${1:-build}
jobs=${2:-2}

if [ "${RUN_COMPARISON_ONE:-}" = 1 ]; then   # one run: NAME SEED|-
  name=$3 seed=$4
  if [ "$seed" = - ]; then out=runs/mini/$name; extra=(); else out=runs/mini/$name/seed-$seed; extra=(--set "run.seed=$seed"); fi
  if [ -f "$out/results.json" ]; then echo "skip  $out (done)"; exit 0; fi
  mkdir -p "$out"
  # Resume only a run that saved a state; anything else starts again
  # (--overwrite: what a run killed before its first save left).
  if [ -f "$out/state/state.safetensors" ]; then mode=--resume; else mode=--overwrite; fi
  echo "start $out ($(date +%H:%M:%S))"
  if ! "$build/core/tools/stsim-run" "recipes/mini/$name.ini" "${extra[@]}" --set "run.output=$out" \
         --set run.threads=1 "$mode" > "$out/stsim-run.log" 2>&1; then
    echo "FAILED $out: see $out/stsim-run.log" >&2; exit 1
  fi
  echo "done  $out ($(date +%H:%M:%S))"
  exit 0
fi

for need in runs/mini/pretrain-bert-2/best runs/mini/pretrain-bert-gen/best; do
  if [ ! -d "$need" ]; then
    echo "run-comparison.sh: $need is missing: run the pretraining recipes first (docs/results.md)" >&2
    exit 1
  fi
done
export RUN_COMPARISON_ONE=1
"$0" "$build" "$jobs" teacher-simcse -
# Seeds outermost: an interrupted comparison still has whole seeds.
for seed in 1 2 3; do
  for name in simcse-bert rankcse-listnet rankcse-listmle paper-no-diff diffcse-bert paper paper-no-rank; do
    echo "$name $seed"
  done
done | xargs -P "$jobs" -L 1 "$0" "$build" "$jobs"
