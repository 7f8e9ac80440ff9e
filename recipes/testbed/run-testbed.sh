#!/bin/bash
# Runs the mini testbed comparison (docs/results.md, "The mini testbed") from
# the repository root: the baselines, then every method recipe of this folder
# for seeds 1..SEEDS, JOBS runs at a time with one thread each, then the
# table (mean ± std, paired differences from SimCSE) and its chart. A run
# whose results.json exists is skipped and an interrupted one resumes from
# its last state (--resume; without a state it starts again, --overwrite),
# so the script can simply be run again.
#
#   recipes/testbed/run-testbed.sh [BUILD_DIR] [JOBS] [SEEDS]
set -euo pipefail
build=${1:-build}
jobs=${2:-2}
seeds=${3:-5}
methods=(simcse listnet-bowidf listmle-bowidf mse-bowidf)
out=runs/testbed

if [ "${RUN_TESTBED_ONE:-}" = 1 ]; then   # one run: NAME SEED
  name=$4 seed=$5 dir=$out/$4/seed-$5
  if [ -f "$dir/results.json" ]; then echo "skip  $dir (done)"; exit 0; fi
  mkdir -p "$dir"
  # Resume only a run that saved a state; anything else starts again
  # (--overwrite: what a run killed before its first save left).
  if [ -f "$dir/state/state.safetensors" ]; then mode=--resume; else mode=--overwrite; fi
  echo "start $dir ($(date +%H:%M:%S))"
  if ! "$build/core/tools/stsim-run" "recipes/testbed/$name.ini" --set "run.seed=$seed" --set "run.output=$dir" \
         --set run.threads=1 "$mode" > "$dir.log" 2>&1; then
    echo "FAILED $dir: see $dir.log" >&2; exit 1
  fi
  echo "done  $dir ($(date +%H:%M:%S))"
  exit 0
fi

mkdir -p "$out"
# Baselines: the untrained student, bow-idf with the task's IDF (the usual
# baseline) and with the training corpus' IDF (the teacher).
[ -f "$out/untrained/results.json" ] ||
  "$build/core/tools/stsim-run" recipes/testbed/budget.ini --set run.output="$out/untrained" > "$out/untrained.log" 2>&1
mkdir -p "$out/bow-idf" "$out/bow-idf-corpus"
[ -f "$out/bow-idf/results.json" ] ||
  "$build/core/tools/stsim-eval" --encoder bow-idf --json "$out/bow-idf/results.json" > "$out/bow-idf.log" 2>&1
[ -f "$out/bow-idf-corpus/results.json" ] ||
  "$build/core/tools/stsim-eval" --encoder bow-idf --set tokenize=words --set "idf_corpus=${STSIM_DATA:-../shared/data}/corpus/*.txt" \
    --json "$out/bow-idf-corpus/results.json" > "$out/bow-idf-corpus.log" 2>&1

export RUN_TESTBED_ONE=1
# Seeds outermost: an interrupted comparison still has whole seeds.
for seed in $(seq 1 "$seeds"); do
  for name in "${methods[@]}"; do echo "$name $seed"; done
done | xargs -P "$jobs" -L 1 "$0" "$build" "$jobs" "$seeds"

groups=()
for name in "${methods[@]}"; do groups+=(--group "$name=$out/$name/seed-*/"); done
"$build/core/tools/stsim-report" "${groups[@]}" --paired-with simcse \
  --baseline "untrained=$out/untrained" --baseline "bow-idf (task IDF)=$out/bow-idf" \
  --baseline "bow-idf (corpus IDF, the teacher)=$out/bow-idf-corpus" \
  --title "mini testbed, seeds 1-$seeds" --markdown "$out"/report.md --svg "$out"/report.svg
