#!/usr/bin/env bash
# GPU check for wnet-seg, under 8 minutes on one modern GPU: the GPU tests (pytest -m gpu), then the
# GPU training benchmark (paper preset, 224x224: fp32 eager against bf16-mixed + channels_last +
# torch.compile) and inference frames/s, then one summary table.
#
#   bash scripts/gpu_check.sh            # on a machine with a CUDA GPU and PyTorch
#   bash scripts/gpu_check.sh --dry-run  # anywhere: the same steps on CPU with tiny shapes
#
# Installs nothing from the network. Python packages missing next to PyTorch (Lightning, Hydra, ...)
# are installed only from wheels carried in $WHEELS (default: shared/wheels, then .whl), with
# pip --no-index. The package itself runs from src/ (PYTHONPATH), not installed.
# Results go to $OUT (default /tmp/gpu_check): gpu_bench.json, gpu_bench.md, pytest.txt.
# Environment: PYTHON (default: .venv/bin/python if it imports torch, else python3),
# BATCH_SIZES (default 8,16), MODES (default fp32,fast), STEPS (default 20).
set -uo pipefail

cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUT"
DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
START=$(date +%s)

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]] && .venv/bin/python -c "import torch" 2>/dev/null; then
    PYTHON=.venv/bin/python
  else
    PYTHON=python3
  fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

need_modules=(torch pytorch_lightning hydra omegaconf PIL numpy scipy skimage sklearn tensorboard pydensecrf pytest yaml)
missing=$("$PYTHON" - "${need_modules[@]}" <<'EOF'
import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))
EOF
)
if [[ -n "$missing" ]]; then
  WHEELS="${WHEELS:-}"
  for d in "$WHEELS" shared/wheels .whl; do
    if [[ -n "$d" && -d "$d" ]] && compgen -G "$d/*.whl" >/dev/null; then WHEELS="$d"; break; fi
  done
  if [[ -n "$WHEELS" && -d "$WHEELS" ]]; then
    echo "== installing carried wheels from $WHEELS (missing: $missing)"
    "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELS" "$WHEELS"/*.whl \
      || echo "!! wheel install failed"
  else
    echo "!! missing Python modules: $missing (carry wheels in shared/wheels or .whl)"
  fi
fi

"$PYTHON" - <<'EOF'
import torch
print(f"== python torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"== {p.name}, {p.total_memory / 2**30:.0f} GiB, bf16: {torch.cuda.is_bf16_supported()}")
EOF
HAS_CUDA=$("$PYTHON" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
if [[ "$HAS_CUDA" != "1" && "$DRY" != "1" ]]; then
  echo "== no CUDA device: running the dry run (CPU, tiny shapes) instead"
  DRY=1
fi

echo "== GPU tests (pytest -m gpu)"
timeout 240 "$PYTHON" -m pytest -m gpu -q -p no:cacheprovider \
  tests/test_speed_options.py 2>&1 | tee "$OUT/pytest.txt" | tail -15
TEST_RC=${PIPESTATUS[0]}

echo "== benchmark"
if [[ "$DRY" == "1" ]]; then
  timeout 240 "$PYTHON" scripts/benchmark_train.py --dry-run --json "$OUT/gpu_bench.json" \
    >"$OUT/gpu_bench.md" 2>"$OUT/gpu_bench.err"
else
  timeout 400 "$PYTHON" scripts/benchmark_train.py --device cuda \
    --batch-sizes "${BATCH_SIZES:-8,16}" --modes "${MODES:-fp32,fast}" --steps "${STEPS:-20}" \
    --timeout 200 --json "$OUT/gpu_bench.json" >"$OUT/gpu_bench.md" 2>"$OUT/gpu_bench.err"
fi
BENCH_RC=$?
[[ $BENCH_RC -ne 0 ]] && tail -5 "$OUT/gpu_bench.err"

echo
echo "================ wnet-seg GPU check summary ================"
echo "mode: $([[ "$DRY" == "1" ]] && echo 'dry run (CPU, tiny shapes; NOT GPU numbers)' || echo GPU)"
echo "pytest -m gpu: exit $TEST_RC ($(grep -Eo '[0-9]+ (passed|failed|skipped|error)[^,]*' "$OUT/pytest.txt" | paste -sd, -))"
echo "benchmark: exit $BENCH_RC"
cat "$OUT/gpu_bench.md"
echo "wall: $(( $(date +%s) - START )) s; results in $OUT"
[[ $TEST_RC -eq 0 && $BENCH_RC -eq 0 ]]
