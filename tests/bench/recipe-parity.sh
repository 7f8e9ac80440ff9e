#!/bin/bash
# Runs every shipped mini and testbed recipe for a few steps with one build,
# so that two builds (say, before and after a change to the training engine)
# can be compared bit for bit:
#
#   tests/bench/recipe-parity.sh run BUILD_DIR OUT_DIR [STEPS]
#   tests/bench/recipe-parity.sh compare OUT_A OUT_B
#
# "run" trains the recipes in dependency order (the pretraining runs first;
# the later recipes take their initial encoder, generator and teacher from
# those short runs instead of runs/mini/...), with the dev set evaluated every
# STEPS/2 steps, a save at the same points, every step logged and no test pass. "compare" checks
# that metrics.jsonl is identical line by line apart from its timing fields
# (elapsed, seconds, sentences_per_second) and that every best/ checkpoint is
# byte-identical; it prints one line per recipe and exits 1 on any difference.
# Run from the repository root with the data where the tools find it.
set -euo pipefail

strip_timing() {
  sed -E 's/"(elapsed|seconds|sentences_per_second)":[-+0-9.eE]+,?//g; s/,}/}/g' "$1"
}

if [ "${1:-}" = compare ]; then
  a=$2 b=$3 bad=0
  for dir in "$a"/*/; do
    name=$(basename "$dir")
    if ! cmp -s <(strip_timing "$a/$name/metrics.jsonl") <(strip_timing "$b/$name/metrics.jsonl"); then
      echo "DIFF  $name: metrics.jsonl"; bad=1; continue
    fi
    if [ -d "$a/$name/best" ] || [ -d "$b/$name/best" ]; then
      if ! diff -rq "$a/$name/best" "$b/$name/best" > /dev/null; then
        echo "DIFF  $name: best/"; bad=1; continue
      fi
    fi
    echo "same  $name ($(wc -l < "$a/$name/metrics.jsonl") metric lines)"
  done
  exit $bad
fi

[ "${1:-}" = run ] || { echo "usage: $0 run BUILD OUT [STEPS] | compare OUT_A OUT_B" >&2; exit 2; }
build=$(cd "$2" && pwd) out=$3 steps=${4:-20}
half=$((steps / 2))
export STSIM_PLUGIN_PATH="$build/plugins"
mkdir -p "$out"
common=(--set "train.steps=$steps" --set "train.eval_every=$half" --set "train.save_every=$half" --set train.log_every=1
        --set train.test=false --set run.threads=1 --set run.seed=7)

run() {   # NAME RECIPE [--set ...]
  local name=$1 recipe=$2; shift 2
  rm -rf "${out:?}/$name"
  if ! "$build/core/tools/stsim-run" "$recipe" "${common[@]}" --set "run.output=$out/$name" "$@" \
       > "$out/$name.log" 2>&1; then
    echo "FAILED $name: see $out/$name.log" >&2; exit 1
  fi
  echo "ran   $name"
}

m=recipes/mini
short=(--set train.warmup=5)   # the pretraining warm-up is longer than the short run
run pretrain-bert      $m/pretrain-bert.ini      "${short[@]}"
run pretrain-bert-2    $m/pretrain-bert-2.ini    "${short[@]}" --set "encoder.model=$out/pretrain-bert/best"
run pretrain-bert-gen  $m/pretrain-bert-gen.ini  "${short[@]}"
run pretrain-roberta   $m/pretrain-roberta.ini   "${short[@]}"
init=(--set "encoder.model=$out/pretrain-bert-2/best")
run teacher-simcse     $m/teacher-simcse.ini     "${init[@]}"
run simcse-bert        $m/simcse-bert.ini        "${init[@]}"
teacher=(--set "teacher.simcse.model=$out/teacher-simcse/best")
run rankcse-listnet    $m/rankcse-listnet.ini    "${init[@]}" "${teacher[@]}"
run rankcse-listmle    $m/rankcse-listmle.ini    "${init[@]}" "${teacher[@]}"
gen=(--set "objective.diff.generator=$out/pretrain-bert-gen/best")
run diffcse-bert       $m/diffcse-bert.ini       "${init[@]}" "${gen[@]}"
run paper              $m/paper.ini              "${init[@]}" "${gen[@]}" "${teacher[@]}"
run paper-no-diff      $m/paper-no-diff.ini      "${init[@]}" "${gen[@]}" "${teacher[@]}"
run paper-no-rank      $m/paper-no-rank.ini      "${init[@]}" "${gen[@]}" "${teacher[@]}"
t=recipes/testbed
for name in simcse listnet-bowidf listmle-bowidf mse-bowidf; do
  run "testbed-$name" "$t/$name.ini"
done
run quickstart         recipes/quickstart.ini
