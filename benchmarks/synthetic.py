"""Synthetic VisDial-shaped batches for the benchmarks (random tokens and image features).

Lengths follow VisDial v0.9 roughly (captions ~11 tokens, questions ~6, answers ~3, cut at
24/16/8). Each round's 100 options hold the ground truth, ``popular`` options drawn from one
fixed set of 100 frequent answers (VisDial builds every list with 30 of its most popular
answers, so they repeat across a batch), and distinct random answers for the rest.
``popular=0`` makes every option distinct: the worst case for ``encode_answers``' deduplication.
"""

from __future__ import annotations

import torch

from pipeline.data.batch import DialogBatch
from pipeline.data.vocab import END_ID

VOCAB = 8964  # the authors' vocabulary size (count > 5 on v0.9 train, incl. padding)
LC, LQ, LA = 24, 16, 8
ROUNDS, OPTIONS = 10, 100


def _tokens(g: torch.Generator, shape: tuple, width: int, lo: int, hi: int, vocab: int):
    """Left-aligned random tokens (*shape, width) with lengths uniform in [lo, hi]."""
    lengths = torch.randint(lo, hi + 1, shape, generator=g)
    tokens = torch.randint(END_ID + 1, vocab, (*shape, width), generator=g)
    steps = torch.arange(width)
    return tokens.masked_fill(steps >= lengths.unsqueeze(-1), 0), lengths


def synthetic_batch(
    b: int, vocab: int = VOCAB, popular: int = 30, seed: int = 0, rounds: int = ROUNDS
) -> DialogBatch:
    """A full ``DialogBatch`` of ``b`` dialogs x ``rounds`` rounds, 100 options of 8 tokens."""
    g = torch.Generator().manual_seed(seed)
    caption, caption_len = _tokens(g, (b,), LC, 6, 16, vocab)
    question, question_len = _tokens(g, (b, rounds), LQ, 3, 10, vocab)
    options, options_len = _tokens(g, (b, rounds, OPTIONS), LA, 1, 6, vocab)  # (B, R, O, La)
    pool, pool_len = _tokens(g, (100,), LA, 1, 3, vocab)  # the frequent answers
    if popular:
        slots = torch.rand(b, rounds, OPTIONS, generator=g).argsort(-1)[..., :popular]
        picks = torch.randint(0, 100, slots.shape, generator=g)  # (B, R, popular)
        options.scatter_(2, slots.unsqueeze(-1).expand(-1, -1, -1, LA), pool[picks])
        options_len.scatter_(2, slots, pool_len[picks])
    gt_index = torch.randint(0, OPTIONS, (b, rounds), generator=g)
    pick = gt_index[..., None, None].expand(-1, -1, 1, LA)  # (B, R, 1, La)
    answer = options.gather(2, pick).squeeze(2)  # (B, R, La)
    answer_len = options_len.gather(2, gt_index.unsqueeze(-1)).squeeze(-1)  # (B, R)
    return DialogBatch(
        image=torch.randn(b, 49, 512, generator=g).relu(),
        caption=caption,
        caption_len=caption_len,
        question=question,
        question_len=question_len,
        answer=answer,
        answer_len=answer_len,
        num_rounds=torch.full((b,), rounds),
        options=options,
        options_len=options_len,
        gt_index=gt_index,
    )
