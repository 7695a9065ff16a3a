#!/usr/bin/env bash
# The GPU figures, in parts that each finish within about 8 minutes on one H100 or H200:
#
#     bash bench/gpu.sh OUT_DIR [7b|small|pad|memory]     (default: 7b)
#
# 7b      Llama-2-7B shape, LoRA and QLoRA, max length 512 and 2048, batch 4, 12 steps: the studio's
#         defaults against the naive TRL recipe (the anchor: LLaMA-Factory's Llama-2-7B LoRA table)
# small   Qwen2.5-0.5B shape, LoRA and QLoRA, 512 and 2048, batch 8, 30 steps: naive, studio and a
#         hand-tuned bare TRL script
# pad     Qwen2.5-0.5B shape, LoRA, 512 and 2048, batch 8, 30 steps: the studio's defaults against the
#         same with speed.pad_to_multiple=64 (fewer batch shapes for kernels compiled per shape)
# memory  bench/memory_check.py: the memory estimate against measured peaks, 0.4B to 7B
#
# Each part writes OUT_DIR/gpu-PART.txt (the printed table, with the card, driver and versions) and
# appends one JSON line a run to OUT_DIR/gpu_speed.jsonl. A part stops starting new runs after
# SPEED_DEADLINE seconds (default 330), so it ends in time even when runs are slower than planned.
set -u
cd "$(dirname "$0")/.."
OUT_DIR=${1:-bench-gpu}
PART=${2:-7b}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu-$PART.txt"
START=$(date +%s)
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(git rev-parse --short HEAD 2>/dev/null || echo unknown) part $PART"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  "$PY" -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
} 2>&1 | tee "$LOG"
DEADLINE=${SPEED_DEADLINE:-330}
speed() {
  "$PY" bench/gpu_speed.py --out "$OUT_DIR/gpu_speed.jsonl" --deadline "$DEADLINE" "$@" 2>&1 \
    | grep -v -e "Writing model shards" -e "Loading weights" | tee -a "$LOG"
}
case "$PART" in
  7b) speed --models llama-2-7b --batch 4 --steps 12 --warmup 3 --tuned none ;;
  small) speed --models qwen2.5-0.5b --batch 8 --steps 30 --warmup 4 --tuned qwen2.5-0.5b ;;
  pad) speed --models qwen2.5-0.5b --methods lora --batch 8 --steps 30 --warmup 4 --tuned none \
         --recipes studio,studio-pad_to_multiple=64 ;;
  memory) timeout 420 "$PY" bench/memory_check.py 2>&1 | tail -n 30 | tee -a "$LOG" ;;
  *) echo "unknown part '$PART': 7b, small, pad or memory" | tee -a "$LOG"; exit 2 ;;
esac
echo "# gpu.sh $PART finished in $(( $(date +%s) - START )) s" | tee -a "$LOG"
