"""Tokenize VisDial files, build the vocabulary from train, and write ``dialogs.h5``.

Every distinct question / answer / caption string is tokenized once (VisDial stores questions and
answers as shared string lists), then dialogs are built by array indexing — so the full v0.9 train
split (1.2 M QA pairs, ~240 k distinct strings) takes seconds. The output layout is documented in
``docs/data-format.md``; it is the contract every later stage reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import h5py
import numpy as np

from pipeline.atomic import atomic_path, write_json
from pipeline.config import ROLES, MaxLen
from pipeline.errors import InputError
from pipeline.data.tokenize import tokenize, tokenize_question
from pipeline.data.visdial import DenseAnnotations, VisDialFile
from pipeline.data.vocab import Vocabulary


def _tokenized(file: VisDialFile, max_len: MaxLen) -> tuple[list, list, list]:
    questions = [tokenize_question(q, max_len.question) for q in file.questions]
    answers = [tokenize(a)[: max_len.answer] for a in file.answers]
    captions = [tokenize(c)[: max_len.caption] for c in file.caption]
    return questions, answers, captions


def _usage(index: np.ndarray, size: int) -> np.ndarray:
    """How many times each string of a list is used by the dialogs' ``index`` (-1 = absent)."""
    return np.bincount(index[index >= 0].ravel(), minlength=size)


def count_words(file: VisDialFile, max_len: MaxLen) -> Counter:
    """Word occurrences over the dialogs' captions, questions and answers (after truncation)."""
    questions, answers, captions = _tokenized(file, max_len)
    counts: Counter = Counter()
    for strings, usage in (
        (questions, _usage(file.question, len(questions))),
        (answers, _usage(file.answer, len(answers))),
    ):
        for tokens, n in zip(strings, usage.tolist(), strict=True):
            if n:
                for tok in tokens:
                    counts[tok] += n
    for tokens in captions:
        counts.update(tokens)
    return counts


def _encode(strings: list[list[str]], vocab: Vocabulary, width: int) -> tuple:
    """(S, width) int32 token ids, left-aligned, 0-padded, and (S,) lengths."""
    ids = np.zeros((len(strings), width), np.int32)
    lens = np.zeros(len(strings), np.int32)
    for i, tokens in enumerate(strings):
        row = vocab.encode(tokens)
        ids[i, : len(row)] = row
        lens[i] = len(row)
    return ids, lens


def _gather(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[index]`` where index -1 gives zeros; shape index.shape + table.shape[1:]."""
    out = table[np.maximum(index, 0)]
    out[index < 0] = 0
    return out


def encode_split(
    file: VisDialFile, vocab: Vocabulary, max_len: MaxLen, dense: DenseAnnotations | None = None
) -> dict[str, np.ndarray]:
    """Arrays of one ``dialogs.h5`` group for ``file`` (see docs/data-format.md)."""
    questions, answers, captions = _tokenized(file, max_len)
    q_ids, q_len = _encode(questions, vocab, max_len.question)
    a_ids, a_len = _encode(answers, vocab, max_len.answer)
    c_ids, c_len = _encode(captions, vocab, max_len.caption)
    has_options = file.options[..., 0] >= 0  # (N, R)
    arrays = {
        "image_id": file.image_id,
        "caption": c_ids,
        "caption_len": c_len,
        "question": _gather(q_ids, file.question),  # (N, R, Lq)
        "question_len": _gather(q_len, file.question),  # (N, R)
        "answer": _gather(a_ids, file.answer),  # (N, R, La)
        "answer_len": _gather(a_len, file.answer),  # (N, R)
        "num_rounds": file.num_rounds,
        "options": np.where(file.options >= 0, file.options, 0).astype(np.int32),  # (N, R, 100)
        "has_options": has_options,
        "gt_index": file.gt_index,
        "answer_pool": a_ids,  # (A, La)
        "answer_pool_len": a_len,  # (A,)
    }
    if dense is not None:
        arrays.update(_dense_arrays(file, dense))
    return arrays


def _dense_arrays(file: VisDialFile, dense: DenseAnnotations) -> dict[str, np.ndarray]:
    """Per dialog: the annotated round (-1 = none) and its 100 option relevances."""
    row_of = {int(image_id): i for i, image_id in enumerate(file.image_id)}
    rounds = np.full(len(file), -1, np.int32)
    relevance = np.zeros((len(file), file.options.shape[2]), np.float32)
    for image_id, rnd, rel in zip(dense.image_id, dense.round, dense.relevance, strict=True):
        row = row_of.get(int(image_id))
        if row is not None:
            rounds[row], relevance[row] = rnd, rel
    return {"dense_round": rounds, "dense_relevance": relevance}


def write_dialogs_h5(
    path: str | Path, groups: dict[str, dict[str, np.ndarray]], attrs: dict
) -> None:
    """Write one group per split, atomically."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs.update(attrs)
        for split, arrays in groups.items():
            group = h5.create_group(split)
            for name, array in arrays.items():
                group.create_dataset(name, data=array)


def hold_out(file: VisDialFile, n: int, seed: int) -> tuple[VisDialFile, VisDialFile]:
    """Split ``n`` dialogs off ``file``: (the rest, the ``n`` held out), each in file order.

    Several dialogs of one image are held out together, so the held-out count can exceed ``n``
    by the dialogs of the last image drawn.

    The paper's protocol (§5): "We split the 83k into 82k for train, 1k for val". The draw is a
    seeded permutation (numpy PCG64), so the same file, ``n`` and ``seed`` give the same split.
    """
    if not 0 < n < len(file):
        raise InputError(
            f"prepare.val_from_train = {n}: must be between 1 and {len(file) - 1} (the train file"
            f" {file.path} has {len(file)} dialogs)"
        )
    # Whole images are held out (a dialog's image is never in both roles): images are drawn in
    # a seeded order until n dialogs are held. With one dialog per image (VisDial) this is the
    # first n of a permutation of the dialogs.
    _, first, image_of = np.unique(file.image_id, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))  # unique image -> its order of first appearance
    image_of = rank[image_of.reshape(-1)]  # (N,) image index in file order
    order = np.random.default_rng(seed).permutation(len(first))  # images in draw order
    per_image = np.bincount(image_of, minlength=len(first))
    taken = order[: int(np.searchsorted(np.cumsum(per_image[order]), n)) + 1]
    held = np.isin(image_of, taken)
    if held.all():
        raise InputError(
            f"prepare.val_from_train = {n}: holding out whole images leaves no train dialog in "
            f"{file.path}"
        )
    return (
        file.subset(np.flatnonzero(~held), file.path),
        file.subset(np.flatnonzero(held), f"{file.path} ({n} dialogs held out, seed {seed})"),
    )


def check_disjoint(files: dict[str, VisDialFile]) -> None:
    """No image may appear in two roles: VisDial v0.9 val images are part of v1.0 train, the
    trap of training on v1.0 and testing on v0.9 val. ``InputError`` names both files."""
    ids = {role: set(file.image_id.tolist()) for role, file in files.items()}
    roles = list(files)
    for i, a in enumerate(roles):
        for b in roles[i + 1 :]:
            shared = sorted(ids[a] & ids[b])
            if shared:
                first = ", ".join(map(str, shared[:5]))
                raise InputError(
                    f"{files[a].path} ({a}) and {files[b].path} ({b}) share {len(shared)} image"
                    f" id(s), e.g. {first}: a model would be tested on images it saw (v0.9 val is"
                    " part of v1.0 train); use disjoint files, or prepare.allow_overlap: true"
                )


def options_equal_to_answer(arrays: dict[str, np.ndarray]) -> int:
    """Options identical (as token sequences) to their round's ground truth, the ground truth
    itself not counted: after lower-casing, truncation and ``<unk>`` they are the same answer,
    so D must never learn them as negatives (``DiscriminativeModel.candidates`` masks them)."""
    pool, pool_len = arrays["answer_pool"], arrays["answer_pool_len"]
    gt = arrays["gt_index"]  # (N, R)
    known = (gt >= 0) & arrays["has_options"]
    opts = arrays["options"][known]  # (M, 100) indices into the pool
    gt_opt = np.take_along_axis(opts, gt[known][:, None], 1)  # (M, 1)
    same = (pool[opts] == pool[gt_opt]).all(-1) & (pool_len[opts] == pool_len[gt_opt])  # (M, 100)
    return int(same.sum() - len(opts))


def prepare(
    files: dict[str, VisDialFile],
    out_dir: str | Path,
    *,
    min_count: int,
    max_len: MaxLen,
    dense: DenseAnnotations | None = None,
    allow_overlap: bool = False,
    progress: Callable[[Iterable], Iterable] = iter,
) -> dict:
    """``vocab.json`` from ``files['train']``; ``dialogs.h5`` and ``stats.json`` for every role.

    ``files`` maps roles (``ROLES``: train, val, test, challenge) to files; ``dense``
    annotations (v1.0 val) belong to ``test``, the reported split. Returns the statistics.
    """
    unknown = sorted(set(files) - set(ROLES))
    if unknown or "train" not in files:
        raise ValueError(f"roles must include train and be among {ROLES}, got {sorted(files)}")
    if not allow_overlap:
        check_disjoint(files)
    out_dir = Path(out_dir)
    vocab = Vocabulary.build(count_words(files["train"], max_len), min_count)
    groups = {
        role: encode_split(file, vocab, max_len, dense if role == "test" else None)
        for role, file in progress([(r, files[r]) for r in ROLES if r in files])
    }
    attrs = {
        "vocab_size": len(vocab),
        "min_count": min_count,
        "max_len": [max_len.caption, max_len.question, max_len.answer],
    } | {f"source_{role}": file.path for role, file in files.items()}
    stats = {
        "vocab_size": len(vocab),
        "dialogs": {role: len(arrays["image_id"]) for role, arrays in groups.items()},
        "rounds": {
            role: int(((arrays["gt_index"] >= 0) & (arrays["answer_len"] > 0)).sum())
            for role, arrays in groups.items()
        },
        "options_equal_to_answer": {
            role: options_equal_to_answer(arrays) for role, arrays in groups.items()
        },
        "sources": {role: file.path for role, file in files.items()},
    }
    write_dialogs_h5(out_dir / "dialogs.h5", groups, attrs)
    # The features stage depends on the image ids alone, so that re-tokenizing (a new
    # min_count, say) does not recompute the VGG features.
    ids = {role: {"image_id": arrays["image_id"]} for role, arrays in groups.items()}
    write_dialogs_h5(out_dir / "image_ids.h5", ids, {})
    vocab.save(out_dir / "vocab.json")
    write_json(out_dir / "stats.json", stats)
    return stats
