#!/bin/bash
# The measured cost model of data-parallel training (docs/distributed.md,
# "Cost model"), in one command from the repository root:
#
#   tests/bench/mpi-cost.sh [BUILD_DIR] [--compute-json FILE] [--steps N] [--max-mb MB]
#
# 1. the gradient all-reduce on this machine's MPI transport: mpi-cost
#    (tests/bench/mpi-cost.c) on 2 and 3 ranks, 4 B .. 512 MB (--max-mb);
# 2. compute: single-process step times of mini, small and base, SimCSE and
#    the paper's step (stsim-bench, real batches, 2 threads; or a JSON that
#    stsim-bench --json wrote, with --compute-json), and the mini SimCSE step
#    at per-rank batches of 64 down to 2 sentences (1 thread);
# 3. the overlap on 2 ranks: a fresh bert-mini SimCSE run (N steps, default
#    10), one process against 2 ranks with the exchange after the backward
#    (allreduce_bucket_mb = 0) and overlapped with it (25 MB), each rank one
#    thread;
# 4. the prediction (ring all-reduce on 10 and 100 Gbit/s links) for 2, 8,
#    32 and 128 ranks, and the check of the model against step 3.
# The load average is printed next to every part: on a shared machine the
# figures move with it.
set -euo pipefail

build=build compute_json="" steps=10 max_mb=512
while [ $# -gt 0 ]; do
  case "$1" in
    --compute-json) compute_json=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --max-mb) max_mb=$2; shift 2 ;;
    -*) echo "usage: $0 [BUILD_DIR] [--compute-json FILE] [--steps N] [--max-mb MB]" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
cost=$build/tests/bench/mpi-cost bench=$build/core/tools/stsim-bench run=$build/core/tools/stsim-run
for f in "$cost" "$bench" "$run"; do
  [ -x "$f" ] || { echo "$0: $f is missing (build with MPI: meson setup -Dmpi=enabled)" >&2; exit 1; }
done
mpirun=(mpirun --allow-run-as-root --oversubscribe)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load() { echo "[load: $(uptime | sed 's/.*load average: //')]"; }

echo "== 1. all-reduce cost on this machine"
for np in 2 3; do
  load
  "${mpirun[@]}" -np "$np" "$cost" --max-mb "$max_mb" | tee "$tmp/cost-$np.txt"
done

echo; echo "== 2. compute per step (one process)"
load
if [ -z "$compute_json" ]; then
  compute_json=$tmp/compute.json
  "$bench" --configs mini,small,base --workloads simcse,paper --threads 2 --batches real --steps 2 --warmup 1 \
    --json "$compute_json" | grep -E '^(config|mini|small|base) '
fi
for b in 64 32 16 8 4 2; do
  "$bench" --configs mini --workloads simcse --threads 1 --batches real --steps 3 --warmup 1 --batch-size "$b" \
    --json "$tmp/batch-$b.json" > /dev/null
done
load

echo; echo "== 3. overlap on 2 ranks: fresh bert-mini, SimCSE, batch 64, $steps steps, 1 thread per rank"
cat > "$tmp/mini.ini" <<EOF
[run]
seed = 42
threads = 1
output = $tmp/run
[train]
corpus = \${data}/corpus/*.txt
batch_size = 64
steps = $steps
max_len = 32
lr = 3e-5
head = mlp
eval_every = 0
save_every = 0
test = false
save_best = false
keep_state = none
log_every = $steps
[encoder]
use = bert
config = $(pwd)/recipes/mini/configs/bert-mini.json
vocab = \${data}/vocab/bert-base-uncased
pooler = cls
mlp_init = random
[objective.contrastive]
use = contrastive
temperature = 0.05
EOF
one() { "$@" 2>&1 | grep -E '^(trained|gradient all-reduce: waited)' | tr '\n' ' '; echo; }
load; echo "1 process:        $(one "$run" "$tmp/mini.ini" --overwrite)" | tee "$tmp/overlap.txt"
load; echo "2 ranks, mb 0:    $(one "${mpirun[@]}" -np 2 "$run" "$tmp/mini.ini" --overwrite --set train.allreduce_bucket_mb=0)" | tee -a "$tmp/overlap.txt"
load; echo "2 ranks, mb 25:   $(one "${mpirun[@]}" -np 2 "$run" "$tmp/mini.ini" --overwrite --set train.allreduce_bucket_mb=25)" | tee -a "$tmp/overlap.txt"
load

echo; echo "== 4. predicted per-step time, speed-up and efficiency (global batch 64 split over the ranks)"
/usr/bin/python3 "$(dirname "$0")/mpi-cost-model.py" "$tmp" "$compute_json"
