#!/usr/bin/env bash
# Run benchmark parts on one GPU machine within a time budget: score each part once, then train every
# seed of every part as its own process, all sharing the benchmark's cache, then rebuild the report.
# Work still running at the deadline is stopped (SIGTERM unwinds the harness); every finished cell is in
# its set's archive (raw/results/full/<model>/<set>.json.gz), and a later call resumes from there.
#
#   bash benchmarks/curation/gpu_run.sh 540 fresh-n fresh-plausible     # 9 minutes, the primary endpoints' sets
#
# Environment: PYTHON (default python3), SEEDS (default "0 1 2 3 4"), BATCH_SIZE (default 32), LOGS (default
# /tmp/gpu-run-logs), RUN_ARGS (more run.py arguments for every call, e.g. "--quick --cache /tmp/q" to try it). Installed packages come from PYTHONPATH (airgap.py install) or the Python's own.
set -uo pipefail
budget=${1:?usage: gpu_run.sh SECONDS PART...}
shift
[ $# -gt 0 ] || { echo "gpu_run.sh: name at least one part (run.py --help lists them)" >&2; exit 2; }
py=${PYTHON:-python3}
seeds=${SEEDS:-0 1 2 3 4}
batch=${BATCH_SIZE:-32}
logs=${LOGS:-/tmp/gpu-run-logs}
mkdir -p "$logs"
deadline=$((SECONDS + budget))
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
run() {  # run LOGNAME ARGS...: run.py with what is left of the budget, in the background
  local name=$1; shift
  local left=$((deadline - SECONDS))
  [ "$left" -gt 10 ] || { echo "$name: no time left" >>"$logs/skipped.log"; return; }
  timeout "$left" "$py" benchmarks/curation/run.py --batch-size "$batch" ${RUN_ARGS:-} "$@" >"$logs/$name.log" 2>&1 &
}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >"$logs/gpu.txt" 2>&1
# `--only` with no names: convert the model once, run nothing (parallel processes would each convert it).
run convert --only
wait
cores=$(nproc)
jobs=$(( $# * $(wc -w <<<"$seeds") ))
threads=$(( cores / jobs > 0 ? cores / jobs : 1 ))
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
for part in "$@"; do run "$part-score" --part "$part" --score-only; done
wait
for part in "$@"; do
  for seed in $seeds; do run "$part-seed$seed" --part "$part" --only-seeds "$seed"; done
done
wait
"$py" benchmarks/curation/run.py ${RUN_ARGS:-} --report-only >"$logs/report.log" 2>&1
grep -h -E "Error|Traceback" "$logs"/*.log | sort | uniq -c | head -20
echo "gpu_run.sh: done with $((deadline - SECONDS)) s of the budget left; logs in $logs"
