#!/usr/bin/env bash
# Run on the lent GPU machine (device tool), from the repo root, with .whl carried:
#   bash bench/gpu_run.sh
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 STUDIO_HOME=/tmp/studio
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, trl, transformers, peft, bitsandbytes, datasets; print(torch.__version__, trl.__version__, transformers.__version__, peft.__version__, bitsandbytes.__version__, datasets.__version__)" || exit 1
python3 bench/gpu_qlora.py "${OUT:-/tmp/out}" 2>&1 | grep -vE "it/s\]|examples/s\]" | tee "${OUT:-/tmp/out}/gpu_log.txt"
