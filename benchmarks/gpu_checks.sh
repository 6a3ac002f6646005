#!/usr/bin/env bash
# Every GPU check of the training issue (#13) in one run, sized for a lent H200 (at most 9.5 of its 15 minutes).
# Each step has its own time limit and writes its own file under $OUT, so one failure leaves the others' results.
#
# Prepare here, once (the device has torch, Lightning, pytest and numpy, but no network and no espnet/soundfile):
#   echo /.whl/ >> .git/info/exclude
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
#       espnet==202511 torch_complex==0.4.4 typeguard==4.6.1 soundfile==0.13.1 asteroid-filterbanks==0.4.0 \
#       sentencepiece==0.2.0
# Then, on the device:  run(command="bash benchmarks/gpu_checks.sh", carry=[".whl"], timeout_s=560)
# Dry run of the plumbing here, on CPU with tiny sizes (every step but the CUDA tests and compile):
#   GPU_CHECKS_DRY=1 OUT=/tmp/gpu_dry bash benchmarks/gpu_checks.sh
#
# Steps (files under $OUT):
#   env.txt           GPU, driver, torch
#   tests.txt         tests/training/test_cuda.py: CPU/CUDA agreement, a bf16 step at the official size, the seeded
#                     FlowSE sampler (the same start on every device), torch.compile against eager; and
#                     tests/evaluation/test_cuda_metrics.py: SpkSim's RawNet3, LID's OWSM-CTC and CAcc's
#                     OWSM v3.1 on cuda against the CPU
#   bench.json        bench_train.py at the official crop (96,000 samples, 16 kHz): ours (official recipe and our
#                     options) beside ESPnet's BSRNN at batch 4 and the largest batch, fp32 and bf16 -> the issue's
#                     goals (x_official at batch 4 >= 2, best audio x realtime >= 400)
#   bench_compile.json the same with torch.compile, batch 4 and 16
#   bench_flowse.json FlowSE's training step at the official size, batch 4, fp32 and bf16
#   profile.json      one profiled step of the official-size BSRNN (top operators by CUDA self time)
set -u
OUT=${OUT:-/tmp/gpu_checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=src
PY=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:src
fi
exec 3>&1  # the step markers go to the script's own output, not into the files the steps write
step() {  # step NAME SECONDS COMMAND...: run with a limit, log start/end and the exit code
  local name=$1 limit=$2; shift 2
  echo ">>> $(date +%T) $name (limit ${limit}s)" >&3
  timeout "$limit" "$@"
  echo "<<< $(date +%T) $name: exit $?" >&3
}
{ nvidia-smi; $PY -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"; } \
  > "$OUT/env.txt" 2>&1
COMMON=(--device cuda --samples 96000 --sr 16000 --steps 3 --matmul-precision high --cudnn-benchmark)
DEVICE=cuda SAMPLES=96000 BATCH=(--batch max --max-batch 128) COMPILE=on
if [ -n "${GPU_CHECKS_DRY:-}" ]; then  # the same commands on CPU, small enough to finish in a minute or two
  COMMON=(--device cpu --samples 4000 --sr 16000 --steps 1) DEVICE=cpu SAMPLES=4000 BATCH=(--batch 1) COMPILE=off
fi
step tests 120 $PY -m pytest -q -p no:cacheprovider tests/training/test_cuda.py tests/evaluation/test_cuda_metrics.py \
  > "$OUT/tests.txt" 2>&1
# 'max' doubles from batch 4 until the GPU runs out of memory (the rows as they finish: bench.log)
step bench 240 $PY benchmarks/bench_train.py "${COMMON[@]}" --models bsrnn-official espnet-official bsrnn-ours \
  "${BATCH[@]}" --precision 32 bf16 > "$OUT/bench.json" 2> "$OUT/bench.log"
step bench_flowse 60 $PY benchmarks/bench_train.py "${COMMON[@]}" --models flowse-official --batch 4 \
  --precision 32 bf16 > "$OUT/bench_flowse.json" 2>> "$OUT/bench.log"
step profile 45 $PY benchmarks/profile_step.py --device "$DEVICE" --model bsrnn-official --batch 4 \
  --samples "$SAMPLES" --sr 16000 --matmul-precision high > "$OUT/profile.json" 2>> "$OUT/bench.log"
step bench_compile 100 $PY benchmarks/bench_train.py "${COMMON[@]}" --models bsrnn-official --batch 4 16 \
  --precision 32 bf16 --compile "$COMPILE" > "$OUT/bench_compile.json" 2>> "$OUT/bench.log"
tail -n 3 "$OUT/tests.txt"
cat "$OUT/bench.json" 2>/dev/null | tail -n 30
