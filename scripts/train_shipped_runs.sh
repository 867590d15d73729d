#!/usr/bin/env bash
# Train the runs shipped in cached_traces/ (see README "Shipped runs"). Every command resumes from
# its checkpoint (cached_traces/.checkpoints/), else from its run file, so this script can be stopped
# and re-run, here or on another machine; raise --iterations to train a shipped run further.
# Usage: scripts/train_shipped_runs.sh [RUN...]   (default: all, in this order)
# The step size decays to 1% of its peak and holds it for the last 15% of steps (the default); the
# scale mixture and the post's-start runs were made before that hold, with a cosine to 0, which
# their lines restore (--lr-floor 0 --lr-hold 0) so that they can be reproduced and continued.
# mlp-normal was trained in two parts: 15,000 steps, then resumed to 30,000 with the schedule stretched
# (the step rose from the floor, 1e-5, to 3.7e-4 at step 15,000, and was back at the floor by 25,500 and held there).
# mlp-hierarchical was trained in two parts: 10,000 steps, then resumed to 14,000 with the schedule
# stretched (the step rose from the floor, 5e-5, to 3.5e-4 at step 10,000, was back at the floor by
# 11,900 and held there); one command of 14,000 steps gives one unbroken schedule instead.
# mlp-mixture's (pi, log s1, log s2) were chosen by validation accuracy on Blundell et al.'s grid:
#   bnn sweep --iterations 400 --draws 20 --workers 2 --pi 0.25          # (s1, s2) at pi = 1/4
#   bnn sweep --iterations 400 --draws 20 --workers 2 --pi 0.5 0.75 --log-s1 0 --log-s2 -7
# (results: docs/mixture-grid.json); cnn-mixture takes the MLP's choice (a CNN grid is beyond a 2-core machine).
# cnn-map is the same fit as cnn-ensemble's first member (seed 0, same settings): after cnn-ensemble,
#   cp cached_traces/.checkpoints/cnn-ensemble.member0.npz cached_traces/.checkpoints/cnn-map.npz
# makes cnn-map's command evaluate that fit instead of training it again.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${BNN_MNIST_DIR:-../shared/data/mnist}"
BNN="${PYTHON:-python} -m core train --data-dir $DATA --out cached_traces --resume"
declare -A RUNS=(
  [mlp-normal]="--model mlp --prior normal --iterations 30000 --start-sigma 0.001 --learning-rate 0.001 --name mlp-normal --label 'Normal(0, 0.1), start sd 0.001, lr 0.001, 15,000 steps resumed to 30,000'"
  [mlp-hierarchical]="--model mlp --prior hierarchical --iterations 14000 --name mlp-hierarchical --label 'hierarchical, glorot start, 14,000 steps'"
  [cnn-normal]="--model cnn --prior normal --iterations 5000 --name cnn-normal --label 'Normal(0, 0.1), glorot start, 5,000 steps'"
  [cnn-hierarchical]="--model cnn --prior hierarchical --iterations 6000 --name cnn-hierarchical --label 'hierarchical, glorot start, 6,000 steps'"
  [mlp-mixture]="--model mlp --prior mixture --mixture 0.25 0 -7 --iterations 6000 --lr-floor 0 --lr-hold 0 --name mlp-mixture --label 'scale mixture pi=0.25, log s1=0, log s2=-7 (chosen on validation), glorot start'"
  [cnn-hierarchical-poststart]="--model cnn --prior hierarchical --iterations 4000 --start post --lr-floor 0 --lr-hold 0 --name cnn-hierarchical-poststart --label \"hierarchical, the post's N(0, 1) start, 4,000 steps\""
  [cnn-mixture]="--model cnn --prior mixture --mixture 0.25 0 -7 --iterations 5000 --name cnn-mixture --label 'scale mixture pi=0.25, log s1=0, log s2=-7 (the MLP's validation choice), glorot start, 5,000 steps'"
  [cnn-ensemble]="--model cnn --prior normal --method ensemble --members 5 --iterations 5000 --name cnn-ensemble --label 'deep ensemble: 5 MAP fits of Normal(0, 0.1), seeds 0 to 4, glorot start, 5,000 steps each'"
  [cnn-map]="--model cnn --prior normal --method map --iterations 5000 --name cnn-map --label 'MAP of Normal(0, 0.1) (an L2 penalty), glorot start, 5,000 steps'"
  [mlp-map]="--model mlp --prior normal --method map --iterations 10000 --name mlp-map --label 'MAP of Normal(0, 0.1) (an L2 penalty), glorot start, 10,000 steps'"
  [mlp-hierarchical-poststart]="--model mlp --prior hierarchical --iterations 5000 --start post --float float64 --lr-floor 0 --lr-hold 0 --name mlp-hierarchical-poststart --label \"hierarchical, the post's N(0, 1) start (float64: float32 gives a NaN ELBO at step 2 from this start)\""
)
ORDER=(mlp-normal mlp-hierarchical cnn-normal cnn-hierarchical mlp-mixture mlp-hierarchical-poststart
       cnn-hierarchical-poststart cnn-mixture cnn-ensemble cnn-map mlp-map)
for run in "${@:-${ORDER[@]}}"; do
  echo "== $run: $(date -u +%FT%TZ)"
  eval "$BNN ${RUNS[$run]}"
done
