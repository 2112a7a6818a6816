#!/usr/bin/env bash
# The GPU check (issue 19): one command on a machine with one CUDA GPU, within 8 minutes, from the repo root:
#   bash bench/gpu_run.sh            # writes $OUT/gpu_check.json (default OUT=/tmp/out) and $OUT/gpu_log.txt
# It installs nothing from the network: only the wheels carried in .whl/ (when present), into /tmp/site.
# Parts (bench/gpu_check.py): probe vs estimate on random-init Qwen2.5-1.5B and Llama-3.1-8B shapes (LoRA bf16,
# QLoRA 4-bit, recipe batch / max_length); padding-free with FlashAttention vs TRL's defaults (effective tokens/s);
# the engine vs a plain TRL script (overhead). Smoke test without a GPU: python bench/gpu_check.py DIR --dry|--cpu
set -uo pipefail
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 STUDIO_HOME=/tmp/studio TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || exit 1
python3 -c "import torch, trl, transformers, peft, bitsandbytes, datasets; print(torch.__version__, trl.__version__, transformers.__version__, peft.__version__, bitsandbytes.__version__, datasets.__version__)" || exit 1
python3 -c "import importlib.util as u; print({m: u.find_spec(m) is not None for m in ('flash_attn', 'kernels', 'liger_kernel')})"
timeout 480 python3 bench/gpu_check.py "$OUT" 2>&1 | grep -vE "it/s\]|examples/s\]" | tee "$OUT/gpu_log.txt"
