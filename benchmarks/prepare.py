"""Benchmark `prepare` at VisDial v0.9 train size; compare tokenization with NLTK's Treebank one.

    python benchmarks/prepare.py [--dialogs 82000] [--strings 120000]

Generates a VisDial-format JSON (N dialogs x 10 rounds x 100 options, ~2x``--strings`` distinct
question/answer strings), then times in this one process: reading it, the whole ``prepare``
(tokenize + vocabulary + dialogs.h5), and tokenizing the same distinct strings with our regex
tokenizer vs NLTK's ``TreebankWordTokenizer`` (what ``word_tokenize`` runs per sentence; the
authors' preprocessing). Prints peak RSS. Needs ``pip install -e .[bench]`` for the NLTK baseline.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.config import MaxLen
from pipeline.data.prepare import prepare
from pipeline.data.tokenize import tokenize
from pipeline.data.visdial import read_visdial

WORDS = [f"w{i}" for i in range(6000)] + ["the", "a", "is", "it", "yes", "no", "can't", "man's"]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + rng.choice(["", ",", ".", " ?"])


def write_visdial(path: Path, dialogs: int, strings: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    questions = [_sentence(rng, rng.randint(3, 10)) for _ in range(strings)]
    answers = [_sentence(rng, rng.randint(1, 9)) for _ in range(strings)]
    with path.open("w") as fh:
        fh.write('{"version": "0.9", "split": "train", "data": {"questions": ')
        fh.write(_json_list(questions) + ', "answers": ' + _json_list(answers))
        fh.write(', "dialogs": [')
        for d in range(dialogs):
            q = np_rng.integers(0, strings, 10)
            opts = np_rng.integers(0, strings, (10, 100))
            gt = np_rng.integers(0, 100, 10)
            rounds = ",".join(
                f'{{"question": {q[r]}, "answer": {opts[r, gt[r]]}, "gt_index": {gt[r]}, '
                f'"answer_options": [{",".join(map(str, opts[r]))}]}}'
                for r in range(10)
            )
            caption = _sentence(rng, rng.randint(6, 14))
            sep = "," if d else ""
            fh.write(f'{sep}{{"image_id": {d}, "caption": "{caption}", "dialog": [{rounds}]}}')
        fh.write("]}}")


def _json_list(strings: list[str]) -> str:
    return "[" + ",".join(f'"{s}"' for s in strings) + "]"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dialogs", type=int, default=82000)
    ap.add_argument("--strings", type=int, default=120000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "visdial_0.9_train.json"
        t = time.perf_counter()
        write_visdial(path, args.dialogs, args.strings)
        print(f"generated {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s")
        base_rss = peak_rss_mb()
        t = time.perf_counter()
        file = read_visdial(path)
        t_read = time.perf_counter() - t
        t = time.perf_counter()
        prepare({"train": file}, Path(tmp) / "out", min_count=5, max_len=MaxLen())
        t_prep = time.perf_counter() - t
        print(f"read JSON: {t_read:.1f} s; prepare (tokenize+vocab+h5): {t_prep:.1f} s; "
              f"total {t_read + t_prep:.1f} s; peak RSS {peak_rss_mb():.0f} MB "
              f"(before reading: {base_rss:.0f} MB)")  # fmt: skip
        strings = file.questions + file.answers + file.caption
    t = time.perf_counter()
    for s in strings:
        tokenize(s)
    ours = len(strings) / (time.perf_counter() - t)
    print(f"tokenize {len(strings)} distinct strings: ours {ours:,.0f} strings/s")
    try:
        from nltk.tokenize import TreebankWordTokenizer
    except ImportError:
        print("NLTK not installed (pip install -e .[bench]): no baseline ratio")
        return
    treebank = TreebankWordTokenizer()
    t = time.perf_counter()
    for s in strings:
        treebank.tokenize(s.lower())
    nltk = len(strings) / (time.perf_counter() - t)
    print(f"NLTK Treebank {nltk:,.0f} strings/s; ratio ours/NLTK = {ours / nltk:.1f}x")


if __name__ == "__main__":
    main()
