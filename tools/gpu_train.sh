#!/usr/bin/env bash
# Train one model on a lent GPU machine inside one 10-minute command, and bring back its weights.
#
#   bash tools/gpu_train.sh MODEL [--set KEY=VALUE ...]
#
# MODEL is symunet, daair, anyir or ndr-restore: the preset MODEL-gpu-aio3 (bf16, torch.compile,
# batch 16 of 128x128 crops, a checkpoint every minute, the cosine planned to end within
# train.time_limit_s = 7 minutes). It installs nothing: it runs airtool from this source tree
# (PYTHONPATH) with what the machine has (torch, numpy, typer, rich, pillow, pyyaml, safetensors)
# and stops first, in one line, if one of those is missing.
#
# Before the call, on the CPU machine (the tree, the pack and all carried paths travel, 64 MiB):
#   python -m tools.pack_train_data --out .data/train-pack --budget-mb 58   (git-ignored)
#   mkdir -p /tmp/weights-aside && mv weights/*.safetensors /tmp/weights-aside/
#   (the shipped weights, about 57 MB with symunet's, would not leave room for the data; the GPU
#   run does not read them; move them back after the call: mv /tmp/weights-aside/* weights/)
# Then: run(command="bash tools/gpu_train.sh symunet", carry=[".data/train-pack"], timeout_s=600)
#
# Under $OUT (or runs/gpu-out without one) it leaves: MODEL-aio3.safetensors (bf16, EMA weights
# of the newest checkpoint, also when training was cut short), manifest.json, metrics.csv,
# log.jsonl, train.log, and gpu.txt (nvidia-smi). Held-out validation PSNR per task is in
# metrics.csv; run `airtool evaluate --suite 3task --weights ...` back on the CPU machine, where the
# evaluation sets are (they are not packed: never train on them).
# On the CPU, a smoke test of the whole script (a few steps, no compile):
#   AIRTOOL_GPU_SMOKE=1 bash tools/gpu_train.sh symunet-s
set -uo pipefail
model=${1:?usage: gpu_train.sh MODEL [--set KEY=VALUE ...]}
shift
out=${OUT:-runs/gpu-out}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c 'import torch, numpy, typer, rich, PIL, yaml, safetensors' 2>/dev/null \
  || { echo "gpu_train.sh: missing one of torch numpy typer rich pillow pyyaml safetensors" >&2; exit 2; }
nvidia-smi > "$out/gpu.txt" 2>&1 || echo "no nvidia-smi (CPU run)" > "$out/gpu.txt"

preset="$model-gpu-aio3"
extra=()
if [ "${AIRTOOL_GPU_SMOKE:-0}" = 1 ]; then  # a CPU check of the plumbing: tiny, short, uncompiled
  preset=symunet-gpu-aio3
  extra=(--set "model.name=$model" --set model.variant=tiny --set train.compile=false
         --set train.precision=fp32 --set train.steps=6 --set data.batch_size=2 --set data.crop=32
         --set data.workers=0 --set val.every=3 --set val.limit=3 --set val.crop=32 --set train.log_every=1
         --set train.time_limit_s=120)
fi
runs=$(mktemp -d "${TMPDIR:-/tmp}/airtool-gpu-runs.XXXXXX")  # checkpoints stay out of $OUT (too large)
run="$runs/$preset"
python3 -m airtool train --config "$preset" --set "output_dir=$runs" "${extra[@]}" "$@" --quiet > "$out/train.log" 2>&1
status=$?
echo "train exited with $status" >> "$out/train.log"
python3 -m airtool train export "$run" --out "$out/$model-aio3.safetensors" --manifest "$out" >> "$out/train.log" 2>&1 \
  || { echo "gpu_train.sh: no checkpoint to export (see train.log)" >&2; exit 1; }
cp "$run/metrics.csv" "$run/log.jsonl" "$out/" 2>/dev/null
[ "${AIRTOOL_GPU_KEEP_RUN:-0}" = 1 ] || rm -rf "$runs"
tail -n 3 "$out/metrics.csv"
exit "$status"
