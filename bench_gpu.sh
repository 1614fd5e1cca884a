#!/usr/bin/env bash
# Every GPU measurement of the README's Speed section in one go, on one CUDA GPU, each under its own time
# limit, and the tests that need CUDA. Tables go to stdout and, one file per step, to ${OUT:-bench_gpu}/.
#   bash bench_gpu.sh            # about 10 minutes on an H200
set -uo pipefail
cd "$(dirname "$0")"
out=${OUT:-bench_gpu}
mkdir -p "$out"
step() {  # step NAME SECONDS COMMAND...: run it, keep its output, go on whatever happens
    local name=$1 limit=$2; shift 2
    echo "=== $name: $*" | tee "$out/$name.txt"
    timeout "$limit" "$@" 2>&1 | tee -a "$out/$name.txt"
    echo "exit ${PIPESTATUS[0]}" | tee -a "$out/$name.txt"
}
step env 30 python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"
step tests 240 python -m pytest -q -x test_generate.py test_model.py -k "cuda or compiles or compiled"
step wavelet_forms 60 python bench.py --mode=wavelet --device=cuda --batch_size=64
step train_b64 120 python bench.py --device=cuda --batch_size=64
step train_b8 120 python bench.py --device=cuda --batch_size=8
step train_b64_compiled 300 python bench.py --device=cuda --batch_size=64 --compile=True
step train_b8_compiled 300 python bench.py --device=cuda --batch_size=8 --compile=True
step generate_graph 240 python bench.py --mode=generate --device=cuda --vocab_size=256
step generate_graph_16 240 python bench.py --mode=generate --device=cuda --vocab_size=256 --num_samples=16
step generate_compiled 300 python bench.py --mode=generate --device=cuda --vocab_size=256 --compile=True
step generate_eager 240 python bench.py --mode=generate --device=cuda --vocab_size=256 --graph=False --gen_tokens=2000
