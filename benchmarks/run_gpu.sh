#!/usr/bin/env bash
# Every table of issue 7 (speed) in one run on one GPU, side by side: text and JSON per part.
#
#   bash benchmarks/run_gpu.sh [OUTDIR] [PART ...]
#
# OUTDIR defaults to benchmarks/results/<UTC date>; PARTS default to all of them, in this order:
#   training    single model, batch 64 and 256, 50,000 dSprites images: plain loop fp32, plain + bf16 +
#               channels_last + torch.compile, plain + bf16 + channels_last in a hand-captured CUDA graph,
#               vaelens (defaults, fp32 + cuda_graph, fast path), pythae model and BaseTrainer
#   ensemble    64 models (beta x seed), batch 64 and 256: vmap fp32 and vmap bf16 + cuda_graph, with
#               pythae BaseTrainer's single-model figure for the ratio
#   perceptual  conv64 + LPIPS-vgg at 64x64 RGB, bf16 + channels_last: FLOPs per step, TFLOP/s, % of peak
#   mi          mutual_information at N = 50,000, d = 10 on the GPU (and the broadcast version beside it)
#   tests       the suite's GPU-marked tests (python -m pytest -m gpu)
# Each part writes OUTDIR/PART.txt (and OUTDIR/PART.json); OUTDIR/summary.md gathers the text and
# OUTDIR/status.txt says which parts passed. A failing part is recorded and the next one runs; the
# script exits 1 if any part failed. Expected on one H100: about 6-9 minutes for all parts (dSprites'
# full grid is rendered once into the vaelens cache on first use, about a minute). Where one command
# may run at most 10 minutes, split it: `run_gpu.sh OUT training` then `run_gpu.sh OUT ensemble
# perceptual mi tests` (same OUTDIR: parts add to it).
#
# Needs: vaelens' dependencies (pip install -e '.[bench]' adds pythae; without it the pythae rows say
# "not installed"), a CUDA device (without one, the GPU rows say "needs CUDA"). Environment:
#   PYTHON=python3         the interpreter
#   SMOKE=1                tiny sizes, to check the script itself on a CPU in a minute or two
#   PART_TIMEOUT=SECONDS   stop a part after this long (recorded as failed; default: no limit)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTDIR="${1:-$ROOT/benchmarks/results/$(date -u +%Y-%m-%d)}"
shift $(( $# > 0 ? 1 : 0 ))
ALL_PARTS=(training ensemble perceptual mi tests)
PARTS=("$@")
if [ ${#PARTS[@]} -eq 0 ]; then PARTS=("${ALL_PARTS[@]}"); fi
for part in "${PARTS[@]}"; do
  case " ${ALL_PARTS[*]} " in
    *" $part "*) ;;
    *) echo "run_gpu.sh: unknown part '$part'; choose from: ${ALL_PARTS[*]}" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
cd "$ROOT"

if [ "${SMOKE:-0}" = 1 ]; then
  TRAINING=(--batch-sizes 16 --images 512 --warmup 4 --steps 4)
  ENSEMBLE=(--models 4 --batch-sizes 16 --images 512 --warmup 4 --steps 4 --sequential-runs 1)
  PERCEPTUAL=(--batch-sizes 4 --images 64 --warmup 4 --steps 4)
  MI=(--sizes 2000 --dims 10)
else
  # Steady state on a GPU: a few hundred steps after warm-up (capture and torch.compile fall in it).
  TRAINING=(--batch-sizes 64 256 --images 50000 --warmup 20 --steps 400)
  # K x vaelens train and the looped ensemble at K = 64 only add minutes; bench_ensemble.py runs them on request.
  ENSEMBLE=(--models 64 --batch-sizes 64 256 --images 50000 --warmup 10 --steps 60
            --rows plain vmap vmap-fast pythae-trainer)
  PERCEPTUAL=(--batch-sizes 64 256 --images 4096 --warmup 10 --steps 100)
  MI=(--sizes 10000 50000 --dims 10)
fi
DEVICE=(--device auto)

FAILED=()
run_part() {
  local name="$1"; shift
  local limit=()
  if [ -n "${PART_TIMEOUT:-}" ]; then limit=(timeout "$PART_TIMEOUT"); fi
  echo "=== $name: $*" | tee "$OUTDIR/$name.txt"
  local started=$SECONDS
  if "${limit[@]}" "$@" 2>&1 | tee -a "$OUTDIR/$name.txt"; then
    echo "$name: ok ($(( SECONDS - started )) s)" | tee -a "$OUTDIR/status.txt"
  else
    echo "$name: FAILED with exit status ${PIPESTATUS[0]} ($(( SECONDS - started )) s)" | tee -a "$OUTDIR/status.txt"
    FAILED+=("$name")
  fi
}

{
  echo "# run_gpu.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  "$PYTHON" -c "import torch; print('torch', torch.__version__, '| CUDA:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null || true
  # Missing packages fail their rows later (pythae's say "not installed"); say so up front.
  "$PYTHON" -c "
import importlib.util as u
missing = [m for m in ('lpips', 'platformdirs', 'pythae', 'pydantic') if u.find_spec(m) is None]
print('missing packages:', ', '.join(missing) if missing else 'none')"
} | tee -a "$OUTDIR/status.txt"

for part in "${PARTS[@]}"; do
  case "$part" in
    training)
      run_part training "$PYTHON" benchmarks/bench_training.py "${TRAINING[@]}" "${DEVICE[@]}" --json "$OUTDIR/training.json" ;;
    ensemble)
      run_part ensemble "$PYTHON" benchmarks/bench_ensemble.py "${ENSEMBLE[@]}" "${DEVICE[@]}" --json "$OUTDIR/ensemble.json" ;;
    perceptual)
      run_part perceptual "$PYTHON" benchmarks/bench_perceptual.py "${PERCEPTUAL[@]}" "${DEVICE[@]}" --json "$OUTDIR/perceptual.json" ;;
    mi)
      run_part mi "$PYTHON" benchmarks/bench_mutual_information.py "${MI[@]}" --devices cuda \
        --methods vaelens broadcast --json "$OUTDIR/mi.json" ;;
    tests)
      run_part tests "$PYTHON" -m pytest -m gpu -q -p no:cacheprovider tests ;;
  esac
done

for part in "${ALL_PARTS[@]}"; do
  if [ -f "$OUTDIR/$part.txt" ]; then
    printf '## %s\n\n```\n%s\n```\n\n' "$part" "$(grep -v -e 'Training of epoch' -e '^\s*$' "$OUTDIR/$part.txt")"
  fi
done > "$OUTDIR/summary.md"
echo "results in $OUTDIR (summary.md, status.txt, PART.txt, PART.json)"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "failed parts: ${FAILED[*]}" >&2
  exit 1
fi
