#!/usr/bin/env bash
# The GPU figures in one go, within about 8 minutes on one H100 or H200:
#
#     bash bench/gpu.sh [OUT_DIR]
#
# 1. facts: the card, driver and package versions
# 2. bench/gpu_speed.py: studio defaults against the naive TRL recipe (and a hand-tuned bare TRL script
#    for the small model): tokens/s, peak memory, MFU and the memory estimate, for Qwen2.5-0.5B- and
#    Llama-2-7B-shaped models with random weights, LoRA and QLoRA, max length 512 and 2048
# 3. bench/memory_check.py --quick: the memory estimate against measured peaks for full fine-tuning
# Everything lands in OUT_DIR/gpu.txt (the printed tables) and OUT_DIR/gpu_speed.jsonl (one line a run).
set -u
cd "$(dirname "$0")/.."
OUT_DIR=${1:-bench-gpu}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu.txt"
START=$(date +%s)
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  "$PY" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
} 2>&1 | tee "$LOG"
"$PY" bench/gpu_speed.py --out "$OUT_DIR/gpu_speed.jsonl" --deadline "${SPEED_DEADLINE:-360}" 2>&1 \
  | grep -v -e "Writing model shards" -e "Loading weights" | tee -a "$LOG"
if [ $(( $(date +%s) - START )) -lt "${MEMORY_CHECK_BEFORE:-420}" ]; then
  echo "# memory_check --quick" | tee -a "$LOG"
  timeout 90 "$PY" bench/memory_check.py --quick 2>&1 | tail -n 20 | tee -a "$LOG"
fi
echo "# gpu.sh finished in $(( $(date +%s) - START )) s" | tee -a "$LOG"
