#!/usr/bin/env bash
# Every GPU measurement of docs/speed.md in one go, on one CUDA GPU, in under 10 minutes: each step under its
# own time limit (they add up to 580 s), its table printed as soon as it is done and kept, one small text file
# a step, in ${OUT:-bench_gpu}/ (no checkpoints: the comparisons train in a temporary folder).
#   bash bench_gpu.sh                 # the python on PATH
#   PYTHON=/opt/venv/bin/python OUT=/tmp/gpu bash bench_gpu.sh
set -uo pipefail
cd "$(dirname "$0")"
py=${PYTHON:-python}
out=${OUT:-bench_gpu}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
step() {  # step NAME SECONDS COMMAND...: run it, keep its output, go on whatever happens
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    echo "=== $name (limit ${limit} s): $*" | tee "$out/$name.txt"
    timeout "$limit" "$@" 2>&1 | tee -a "$out/$name.txt"
    echo "exit ${PIPESTATUS[0]} after $((SECONDS - t0)) s" | tee -a "$out/$name.txt"
}
step env 20 "$py" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"
if "$py" -c "import pytest" 2>/dev/null; then  # the CUDA-only tests: forms equal to the CPU's, graphs, compile
    step tests 60 "$py" -m pytest -q -x test_generate.py test_model.py -k "cuda or compiles or compiled"
else
    echo "=== tests: skipped, pytest is not installed for $py" | tee "$out/tests.txt"
fi
quick=(--rounds=3 --steps=5 --warmup=2)
step wavelet_forms 30 "$py" bench.py --mode=wavelet --device=cuda --batch_size=64 "${quick[@]}"
step train_b64 50 "$py" bench.py --device=cuda --batch_size=64 "${quick[@]}"
step train_b8 40 "$py" bench.py --device=cuda --batch_size=8 "${quick[@]}"
step train_b64_compiled 90 "$py" bench.py --device=cuda --batch_size=64 --compile=True "${quick[@]}"
step train_b8_compiled 60 "$py" bench.py --device=cuda --batch_size=8 --compile=True "${quick[@]}"
step generate_graph 40 "$py" bench.py --mode=generate --device=cuda --vocab_size=256 --gen_tokens=4000 "${quick[@]}"
step generate_graph_16 40 "$py" bench.py --mode=generate --device=cuda --vocab_size=256 --num_samples=16 \
    --gen_tokens=4000 "${quick[@]}"
step generate_compiled 60 "$py" bench.py --mode=generate --device=cuda --vocab_size=256 --compile=True \
    --gen_tokens=4000 "${quick[@]}"
# several runs of a comparison side by side on one GPU: the wall time of 6 short runs, one at a time and 4 at once
for jobs in 1 4; do
    step "compare_jobs$jobs" 45 "$py" compare.py config/compare_quick.py --device=cuda --max_iters=100 \
        --jobs=$jobs --results="$work/jobs$jobs"
    cp "$work/jobs$jobs/summary.md" "$out/compare_jobs${jobs}_summary.md" 2>/dev/null
done
echo "tables in $out/"
