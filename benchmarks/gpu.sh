#!/usr/bin/env bash
# Separation throughput on a GPU machine, in one call of at most 10 minutes.
#
# Prepare here (once):    benchmarks/gpu.sh --prepare     (downloads demucs + julius wheels to .whl/)
# Run there:              bash benchmarks/gpu.sh           (the device tool carries .whl/ and the repo)
# Smoke test on a CPU:    bash benchmarks/gpu.sh --device cpu --tiny --seconds 20 --repeats 1
#
# The GPU machine has torch but not demucs; the wheels are pure Python and small (<1 MB).
# faster-whisper cannot use that GPU (CTranslate2's wheel needs libcublas.so.12; the machine
# has CUDA 13 only), so transcription and the server suite have no GPU part: the report says so.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--prepare" ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d .whl demucs==4.1.0 julius==0.2.8
  ls -la .whl
  exit 0
fi
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1 && ! python3 -c "import demucs" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
out="${OUT:-benchmarks/results}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
python3 -m benchmarks.gpu_separation --out "$out/separation_gpu.json" "$@"
