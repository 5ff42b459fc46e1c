"""D's de-duplication of answers: ``unique_rows`` (sort-based) vs ``torch.unique(dim=0)``.

The rows are the candidate answers of one demo-size training batch of D (32 dialogs x 10 rounds
x 32 candidates, 8 tokens + the length) or of its 100 options when it scores a batch, drawn from
a pool of ``--pool`` distinct answers as in VisDial. Both give the same result (checked); the
figure is the ratio of their times in this process.
"""

from __future__ import annotations

import argparse
import time

import torch

from pipeline.models.discriminator import unique_rows


def bench(fn, rows, iters: int) -> float:
    fn(rows)
    start = time.perf_counter()
    for _ in range(iters):
        fn(rows)
    return (time.perf_counter() - start) / iters


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[10240, 32000])
    ap.add_argument("--pool", type=int, default=170, help="distinct answers (demo: ~170)")
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    out = {}
    for n in args.rows:
        pool = torch.randint(4, 127, (args.pool, 9), generator=g)
        pool[:, 8] = torch.randint(1, 9, (args.pool,), generator=g)
        rows = pool[torch.randint(0, args.pool, (n,), generator=g)]
        want = torch.unique(rows, dim=0, return_inverse=True)
        got = unique_rows(rows)
        assert all(torch.equal(a, b) for a, b in zip(want, got, strict=True))
        t_torch = bench(lambda r: torch.unique(r, dim=0, return_inverse=True), rows, args.iters)
        t_ours = bench(unique_rows, rows, args.iters)
        out[n] = t_torch / t_ours
        print(f"{n} rows: torch.unique(dim=0) {1e3 * t_torch:.1f} ms, unique_rows "
              f"{1e3 * t_ours:.1f} ms -> {t_torch / t_ours:.1f}x")  # fmt: skip
    return out


if __name__ == "__main__":
    main()
