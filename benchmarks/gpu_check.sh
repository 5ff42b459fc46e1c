#!/usr/bin/env bash
# One-shot GPU check (one GPU, <= 8 minutes): the `cuda` tests, every benchmark at GPU sizes and
# the tiny-profile `dvc repro` on CUDA. Every figure goes to one file to paste into
# benchmarks/README.md:  bash benchmarks/gpu_check.sh [OUT_FILE]   (default gpu_check.txt)
set -uo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-gpu_check.txt}")"
py="${PYTHON:-python}"
export PYTHONUNBUFFERED=1
: >"$out"
step() {  # step LABEL SECONDS CMD... : run with a time limit, tee into the report
  local label=$1 limit=$2; shift 2
  echo "=== $label ($(date -u +%H:%M:%S))" | tee -a "$out"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$out"
  echo "--- $label: exit ${PIPESTATUS[0]}, $((SECONDS - t0)) s" | tee -a "$out"
}
step "device" 30 "$py" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(), torch.cuda.device_count(), 'GPU(s)')"
step "cuda tests" 120 "$py" -m pytest -q -m cuda tests/test_cuda.py
step "train benchmark (batch 128, bf16)" 90 "$py" benchmarks/train.py --device cuda --batch 128 --iters 5 --precision auto
step "evaluate benchmark" 45 "$py" benchmarks/evaluate.py --device cuda --batch 64
step "features benchmark (batch 128)" 60 "$py" benchmarks/features.py --device cuda --images 512 --batch-size 128 --num-workers 8
tmp=$(mktemp -d)
step "tiny-profile dvc repro on cuda" 120 "$py" - "$tmp" <<'PY'
import subprocess, sys, time
from pathlib import Path
from tests.test_dvc_pipeline import merge
from stages.params import read_yaml
import yaml
dest = Path(sys.argv[1])
files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], capture_output=True,
                       text=True, check=True).stdout.split()
for rel in files:
    if Path(rel).is_file() and not rel.startswith(("data/", "metrics/")):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(Path(rel).read_bytes())
params = read_yaml("params.yaml")
merge(params, read_yaml("tests/params.tiny.yaml"))
for section in ("features", "train_g", "train_d", "transfer", "evaluate", "report"):
    params[section]["device"] = "cuda"
(dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
run = lambda *a: subprocess.run(a, cwd=dest, check=True)
run("git", "init", "-q"); run("git", "add", "-A")
run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
start = time.perf_counter()
run("dvc", "repro")
print(f"dvc repro on cuda: {time.perf_counter() - start:.1f} s")
run("dvc", "metrics", "show", "--md")
PY
rm -rf "$tmp"
echo "figures in $out"
