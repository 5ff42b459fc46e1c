"""Across seeds: mean ± std (n) of every variant's test metrics and every claim's Δ, and in how
many seeds each claim was reproduced — read from DVC's experiments (``dvc exp show --json``).

Queue the seeds with DVC's own machinery (docs/evaluation.md)::

    for s in 1 2; do
        dvc exp run --queue -S train_g.seed=$s -S train_d.seed=$s -S transfer.seed=$s
    done
    dvc queue start -j 1   # then wait: dvc queue status

Every experiment (and the baseline commit, where its metrics exist) is one run; runs are keyed
by their seeds ``(train_g.seed, train_d.seed, transfer.seed)`` and a seed tuple seen twice is
counted once (the workspace repeats the last applied experiment).
"""

from __future__ import annotations

from collections.abc import Iterator
from statistics import mean, stdev

from pipeline.evaluation.compare import METRICS

SEED_KEYS = ("train_g", "train_d", "transfer")
VERDICTS = ("reproduced", "not significant", "contradicted")


def _name(entry: dict) -> str:
    rev = str(entry.get("rev", ""))
    return entry.get("name") or (rev[:7] if len(rev) == 40 else rev)


def _entries(doc: list) -> Iterator[tuple[str, dict]]:
    """(name, data) of every commit and experiment of ``dvc exp show --json``, workspace first."""
    for entry in doc or []:
        if entry.get("data"):
            yield _name(entry), entry["data"]
        for exp in entry.get("experiments") or []:
            for rev in exp.get("revs") or []:
                if rev.get("data"):
                    yield _name(rev), rev["data"]


def runs_from_exp_show(doc: list) -> list[dict]:
    """``[{"name", "seeds", "metrics": {variant: {...}}, "comparisons": {...}}]``, one per seed
    tuple, from the JSON of ``dvc exp show --json``; entries without metrics are left out."""
    runs: dict[tuple, dict] = {}
    for name, data in _entries(doc):
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
        seeds = tuple((params.get(k) or {}).get("seed") for k in SEED_KEYS)
        files = data.get("metrics") or {}
        metrics = {
            path.removeprefix("metrics/").removesuffix(".json"): f["data"]
            for path, f in files.items()
            if path.startswith("metrics/") and "data" in f
        }
        comparisons = (files.get("report/comparisons.json") or {}).get("data") or {}
        if metrics and seeds not in runs:
            runs[seeds] = {"name": name, "seeds": list(seeds), "metrics": metrics,
                           "comparisons": comparisons}  # fmt: skip
    return list(runs.values())


def _stats(values: list[float]) -> dict:
    return {"mean": mean(values), "std": stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}  # fmt: skip


def summarize(runs: list[dict]) -> dict:
    """``{"runs": [...names], "variants": {v: {metric: stats}}, "claims": {pair: {metric:
    stats of Δ + counts of each verdict}}}``."""
    variants: dict[str, dict[str, list[float]]] = {}
    claims: dict[str, dict[str, dict]] = {}
    for run in runs:
        for v, m in run["metrics"].items():
            for key in METRICS:
                if isinstance(m.get(key), int | float):
                    variants.setdefault(v, {}).setdefault(key, []).append(float(m[key]))
        for pair, rows in run["comparisons"].items():
            for key, row in rows.items():
                if not isinstance(row, dict) or "delta" not in row:
                    continue
                slot = claims.setdefault(pair, {}).setdefault(
                    key, {"deltas": [], **dict.fromkeys(VERDICTS, 0)}
                )
                slot["deltas"].append(float(row["delta"]))
                if row.get("verdict") in VERDICTS:
                    slot[row["verdict"]] += 1
    return {
        "runs": [{"name": r["name"], "seeds": r["seeds"]} for r in runs],
        "variants": {v: {k: _stats(x) for k, x in m.items()} for v, m in variants.items()},
        "claims": {
            pair: {k: {**_stats(s.pop("deltas")), **s} for k, s in rows.items()}
            for pair, rows in claims.items()
        },
    }


def majority(counts: dict) -> str | None:
    """The verdict of more than half of a claim metric's ``n`` runs (a ``claims`` entry of the
    summary: ``n`` and a count per verdict), ``None`` when no verdict has most runs."""
    n = counts.get("n") or 0
    return next((v for v in VERDICTS if 2 * (counts.get(v) or 0) > n), None)


def stability(verdict: str, counts: dict | None) -> str:
    """``"2 of 3 runs"``: in how many seed runs a claim metric got ``verdict``, and what the
    others got (``"1 of 3 runs; 2 not significant"``); without ``counts`` "not in the seeds"."""
    if not counts or not counts.get("n"):
        return "not in the seed runs"
    others = [f"{counts[v]} {v}" for v in VERDICTS if v != verdict and counts.get(v)]
    text = f"{counts.get(verdict) or 0} of {counts['n']} runs"
    return "; ".join([text, *others])


def _fmt(metric: str, s: dict) -> str:
    scale, digits = (100, 2) if metric.startswith("r@") else (1, 2 if metric == "mean_rank" else 4)
    return f"{scale * s['mean']:.{digits}f} ± {scale * s['std']:.{digits}f} ({s['n']})"


def seeds_markdown(summary: dict) -> str:
    """The tables of ``report/seeds.md``."""
    names = ", ".join(f"{r['name']} {tuple(r['seeds'])}" for r in summary["runs"])
    md = [
        "# Across seeds",
        "",
        f"Runs (train_g, train_d, transfer seeds): {names}. Mean ± std (n) over runs; R@k in "
        "percent. A claim's verdict per seed comes from its paired bootstrap CI "
        "(`report/comparisons.json` of that run); most runs = the verdict of more than half "
        "of them (– when none has), the only one the report's summary counts.",
        "",
        "## Test metrics per variant",
        "",
        "| variant | MRR | R@1 | R@5 | R@10 | Mean |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    keys = ("mrr", "r@1", "r@5", "r@10", "mean_rank")
    for v, m in summary["variants"].items():
        md.append(f"| {v} | " + " | ".join(_fmt(k, m[k]) if k in m else "–" for k in keys) + " |")
    md += [
        "",
        "## Claims (A − B)",
        "",
        "| A | B | metric | Δ mean ± std (n) | reproduced | not significant | contradicted | "
        "most runs |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for pair, rows in summary["claims"].items():
        a, _, b = pair.partition("_vs_")
        for key in ("mrr", "r@5", "mean_rank"):
            if key in rows:
                r = rows[key]
                md.append(
                    f"| {a} | {b} | {key} | {_fmt(key, r)} | {r['reproduced']} | "
                    f"{r['not significant']} | {r['contradicted']} | {majority(r) or '–'} |"
                )
    return "\n".join(md) + "\n"
