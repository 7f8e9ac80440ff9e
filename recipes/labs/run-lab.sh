#!/bin/bash
# Runs one lab of docs/labs.md (or all of them) from the repository root:
# every arm of the lab for seeds 1..SEEDS, JOBS runs at a time with one
# thread each, then the lab's table (mean ± std over the seeds, paired
# differences from the lab's baseline arm) and chart. An arm's run is shared
# by every lab that uses it (runs/labs/runs/ARM/seed-N) and skipped when its
# results.json exists, so a lab re-run costs nothing and an interrupted one
# only redoes the unfinished runs (the lab setting keeps no resume state).
#
#   recipes/labs/run-lab.sh LAB|all|list [BUILD_DIR] [JOBS] [SEEDS]
#
# LAB is one of: pooler temperature batch teacher distill form vocab.
set -euo pipefail
lab=${1:-list}
build=${2:-build}
jobs=${3:-2}
seeds=${4:-3}
out=runs/labs
data=${STSIM_DATA:-../shared/data}

# ARM -> recipe and the keys it swaps (the recipe's --set arguments).
arm_args() {
  case $1 in
    simcse)        echo "recipes/labs/simcse.ini" ;;
    tau-0.2)       echo "recipes/labs/simcse.ini --set objective.contrastive.temperature=0.2" ;;
    tau-1)         echo "recipes/labs/simcse.ini --set objective.contrastive.temperature=1" ;;
    batch-16)      echo "recipes/labs/simcse.ini --set train.batch_size=16" ;;
    batch-128)     echo "recipes/labs/simcse.ini --set train.batch_size=128" ;;
    listnet)       echo "recipes/labs/listnet.ini" ;;
    pool-cls)      echo "recipes/labs/listnet.ini --set encoder.pooler=cls_before_pooler" ;;
    pool-first-last) echo "recipes/labs/listnet.ini --set encoder.pooler=avg_first_last" ;;
    teacher-bow)   echo "recipes/labs/teacher-bow.ini" ;;
    teacher-bert)  echo "recipes/labs/teacher-bert.ini" ;;
    rank-only)     echo "recipes/labs/rank-only.ini" ;;
    listmle)       echo "recipes/labs/listnet.ini --set objective.rank.form=listmle" ;;
    mse)           echo "recipes/labs/listnet.ini --set objective.rank.form=mse --set objective.rank.weight=10" ;;
    vocab-8k)      echo "recipes/labs/vocab-8k.ini" ;;
    *) echo "run-lab.sh: unknown arm '$1'" >&2; return 1 ;;
  esac
}

# LAB -> its arms, the baseline (paired reference) first.
lab_arms() {
  case $1 in
    pooler)      echo "listnet pool-cls pool-first-last" ;;
    temperature) echo "simcse tau-0.2 tau-1" ;;
    batch)       echo "simcse batch-16 batch-128" ;;
    teacher)     echo "listnet teacher-bow teacher-bert" ;;
    distill)     echo "simcse listnet rank-only" ;;
    form)        echo "listnet listmle mse" ;;
    vocab)       echo "listnet vocab-8k" ;;
    *) echo "run-lab.sh: unknown lab '$1' (pooler temperature batch teacher distill form vocab, or all)" >&2; return 1 ;;
  esac
}
labs="pooler temperature batch teacher distill form vocab"

if [ "${RUN_LAB_ONE:-}" = 1 ]; then   # one run: ARM SEED
  arm=$5 seed=$6 dir=$out/runs/$5/seed-$6
  if [ -f "$dir/results.json" ]; then echo "skip  $dir (done)"; exit 0; fi
  mkdir -p "$out/runs/$arm"
  args=$(arm_args "$arm")
  echo "start $dir ($(date +%H:%M:%S))"
  # shellcheck disable=SC2086  # the arm's arguments are words
  if ! "$build/core/tools/stsim-run" $args --set "run.seed=$seed" --set "run.output=$dir" \
         --overwrite > "$dir.log" 2>&1; then
    echo "FAILED $dir: see $dir.log" >&2; exit 1
  fi
  echo "done  $dir ($(date +%H:%M:%S))"
  exit 0
fi

case $lab in
  list) for l in $labs; do echo "$l: $(lab_arms "$l")"; done; exit 0 ;;
  all) todo=$labs ;;
  *) lab_arms "$lab" > /dev/null; todo=$lab ;;
esac

# The vocabulary lab's corpus-trained WordPiece vocabulary (two seconds).
if [[ " $todo " == *" vocab "* ]] && [ ! -f "$out/vocab-wordpiece-8k/vocab.txt" ]; then
  "$build/core/tools/stsim-vocab" --kind wordpiece --size 8000 --lowercase \
    --out "$out/vocab-wordpiece-8k" "$data"/corpus/*.txt
fi

export RUN_LAB_ONE=1
arms=$(for l in $todo; do lab_arms "$l" | tr ' ' '\n'; done | awk '!seen[$0]++')
# Seeds outermost: an interrupted lab still has whole seeds.
for seed in $(seq 1 "$seeds"); do
  for arm in $arms; do echo "$arm $seed"; done
done | xargs -P "$jobs" -L 1 "$0" "$lab" "$build" "$jobs" "$seeds"

for l in $todo; do
  groups=()
  for arm in $(lab_arms "$l"); do groups+=(--group "$arm=$out/runs/$arm/seed-*/"); done
  base=$(lab_arms "$l" | cut -d' ' -f1)
  dir=$out/$l
  mkdir -p "$dir"
  "$build/core/tools/stsim-report" "${groups[@]}" --paired-with "$base" \
    --title "lab: $l, seeds 1-$seeds" --markdown "$dir"/report.md --svg "$dir"/report.svg
  echo "lab $l: $dir (report.md, report.svg)"
done
