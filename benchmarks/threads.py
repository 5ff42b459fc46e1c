"""Two trainings at once: demo-size G/D steps with 1 or 2 intra-op threads, alone and side by side.

    python benchmarks/threads.py                 # the demo's sizes, 30 steps per run
    python benchmarks/threads.py --steps 60 --model hciae-d-np-att

A second ``dvc repro`` in another terminal, or ``dvc queue start -j 2``, runs two torch
processes on the same cores. Each process sizes its intra-op pool to every core, and the pools
spin-wait on each other: issue 21 measured 5-10x slower stages, not 2x. This runs the same
training step (forward, backward, clipping, Adam; the demo's model sizes: embed 64, hidden 128,
batch 32 dialogs x 10 rounds, vocabulary 130, 100 options, ``benchmarks/synthetic.py``) in
fresh processes in four layouts and prints each one's seconds per step and the total throughput
(steps/s over all processes) as a ratio to one process with ``torch.get_num_threads()`` threads,
run first in the same invocation. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker(model_name: str, steps: int, threads: int) -> None:
    """One process: ``steps`` training steps; prints seconds per step."""
    import torch
    from torch import nn

    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    from synthetic import synthetic_batch

    from pipeline.config import ModelConfig
    from pipeline.models.variants import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batch = synthetic_batch(32, vocab=130)
    kw = {"negatives": 31, "l2": 1e-3} if "-d-" in model_name else {}
    model = build_model(model_name, 130, ModelConfig(64, 128, 0.2, "zscore"), **kw)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)

    def step() -> None:
        loss_sum, count = model(batch)
        loss = loss_sum / count.clamp_min(1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    print(f"{(time.perf_counter() - start) / steps:.4f}", flush=True)


def run(model_name: str, steps: int, threads: int, processes: int) -> list[float]:
    """Start ``processes`` workers at once, each with ``threads`` threads; their s/step."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, __file__, "--worker", "--model", model_name, "--steps", str(steps),
           "--threads", str(threads)]  # fmt: skip
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(processes)]  # fmt: skip
    return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="hciae-g-mle")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.model, args.steps, args.threads)
        return
    cores = os.cpu_count() or 1
    layouts = [(cores, 1), (1, 1), (cores, 2), (1, 2)]  # (threads each, processes)
    base = None
    print(f"{args.model}, {args.steps} steps per process, {cores} cores")
    print(f"{'layout':32s} {'s/step (each)':>18s} {'steps/s, all':>13s} {'vs 1 proc':>10s}")
    for threads, processes in layouts:
        secs = run(args.model, args.steps, threads, processes)
        throughput = sum(1 / s for s in secs)
        base = base or throughput
        name = f"{processes} process(es) x {threads} thread(s)"
        each = " / ".join(f"{s:.3f}" for s in secs)
        print(f"{name:32s} {each:>18s} {throughput:13.2f} {throughput / base:9.2f}x")


if __name__ == "__main__":
    main()
