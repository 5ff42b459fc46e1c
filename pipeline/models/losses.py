"""The training objectives: N-pair (Eq. 4), perceptual (Eq. 5), option cross-entropy, token MLE.

Every loss computes in float32 whatever the autocast dtype (its inputs are cast), so bf16 training
changes the model's arithmetic, not the objective's. All work on flattened rounds: M = B * R rows,
one per (dialog, round); ``mask`` (M,) bool selects the rounds that exist
(``DialogBatch.round_mask.reshape(-1)``). Every loss is a mean over the selected rounds (or tokens,
for MLE); an empty selection gives 0 (with a graph), not NaN. Scores are dot products s = e^T f(a)
(paper §4.2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def npair_loss(
    e: Tensor,
    f_gt: Tensor,
    f_neg: Tensor,
    neg_mask: Tensor | None = None,
    l2: float = 0.0,
    mask: Tensor | None = None,
) -> Tensor:
    """Multi-class N-pair loss (paper Eq. 4) plus the L2 regulariser on the embedding vectors.

        L = mean_t log(1 + sum_i exp(e_t^T f(a_{t,i}^-) - e_t^T f(a_t^gt)))
            + l2 * mean_t (||e_t||^2 + ||f(a_t^gt)||^2 + mean_i ||f(a_{t,i}^-)||^2)

    e (M, D), f_gt (M, D), f_neg (M, N, D); ``neg_mask`` (M, N) bool marks the real negatives
    (padding options and the ground truth itself must be False: the authors' code let the
    ground truth slip into its negatives, which this function cannot do if the mask is built with
    :func:`negatives_from_options`). The log-sum is computed as logsumexp over [0, margins].

    Regulariser ("Following [43], we regularize the L2 norm of the embedding vectors", §5): the
    *squared* Euclidean norm of every embedding vector in the loss -- the encoder output e, f(gt)
    and each real negative -- averaged over vectors and then rounds, so its weight is independent
    of the batch size and of N (Sohn 2016 penalises the mean squared norm of the embeddings). The
    authors' public code instead adds ``0.1 * (||E|| + ||F_gt|| + ||F_neg||)`` with *unsquared*
    Frobenius norms of the whole batch tensors, which grows with sqrt(batch size).
    """
    e, f_gt, f_neg = e.float(), f_gt.float(), f_neg.float()  # fp32 under any autocast
    s_gt = (e * f_gt).sum(-1)  # (M,)
    s_neg = torch.einsum("md,mnd->mn", e, f_neg)  # (M, N)
    margins = s_neg - s_gt.unsqueeze(1)  # (M, N)
    if neg_mask is not None:
        margins = margins.masked_fill(~neg_mask, float("-inf"))
    zeros = margins.new_zeros(margins.shape[0], 1)
    per_round = torch.logsumexp(torch.cat([zeros, margins], dim=1), dim=1)  # (M,)
    if l2:
        neg_sq = f_neg.pow(2).sum(-1)  # (M, N)
        if neg_mask is None:
            neg_sq = neg_sq.mean(1)
        else:
            w = neg_mask.to(neg_sq.dtype)
            neg_sq = (neg_sq * w).sum(1) / w.sum(1).clamp_min(1.0)
        per_round = per_round + l2 * (e.pow(2).sum(-1) + f_gt.pow(2).sum(-1) + neg_sq)
    return _masked_mean(per_round, mask)


def negatives_from_options(
    f_options: Tensor, gt_index: Tensor, options_len: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Split encoded options (M, O, D) into f_gt (M, D), negatives (M, O, D) and neg_mask (M, O).

    The negatives are all options except the ground truth (masked out, not deleted, so the
    tensor stays rectangular) and, when ``options_len`` (M, O) is given, except empty options.
    Rows with ``gt_index < 0`` get an all-False mask (mask those rounds out of the loss too).
    """
    m, o, _ = f_options.shape
    gt = gt_index.clamp_min(0)
    f_gt = f_options[torch.arange(m, device=f_options.device), gt]  # (M, D)
    neg_mask = torch.arange(o, device=f_options.device).unsqueeze(0) != gt.unsqueeze(1)  # (M, O)
    neg_mask = neg_mask & (gt_index >= 0).unsqueeze(1)
    if options_len is not None:
        neg_mask = neg_mask & (options_len > 0)
    return f_gt, f_options, neg_mask


def perceptual_loss(e: Tensor, f_gt: Tensor, f_hat: Tensor, mask: Tensor | None = None) -> Tensor:
    """Discriminant perceptual loss L_G (paper Eq. 5), the 1-pair case of Eq. 4.

        L_G = mean_t log(1 + exp(e_t^T f(a_t^gt) - e_t^T f(â_t)))  = softplus(s_gt - s_hat)

    e, f_gt, f_hat: (M, D); f_hat = f(â) is D's embedding of G's sampled answer.
    """
    e, f_gt, f_hat = e.float(), f_gt.float(), f_hat.float()  # fp32 under any autocast
    margin = (e * f_gt).sum(-1) - (e * f_hat).sum(-1)  # (M,)
    return _masked_mean(F.softplus(margin), mask)


def options_cross_entropy(
    scores: Tensor, gt_index: Tensor, mask: Tensor | None = None, options_mask: Tensor | None = None
) -> Tensor:
    """Softmax cross-entropy over the candidate options (the D-MLE loss of Das et al. 2017).

    scores (M, O), gt_index (M,); rows with ``gt_index < 0`` or ``mask`` False are ignored;
    ``options_mask`` (M, O) bool excludes (padding) options from the softmax.
    """
    scores = scores.float()  # fp32 under any autocast
    valid = gt_index >= 0
    if mask is not None:
        valid = valid & mask
    if options_mask is not None:
        scores = scores.masked_fill(~options_mask, float("-inf"))
    # Ignored rows get constant scores so that no NaN can reach the backward pass.
    scores = scores.masked_fill(~valid.unsqueeze(1), 0.0)
    per_round = F.cross_entropy(scores, gt_index.clamp_min(0), reduction="none")  # (M,)
    per_round = per_round.masked_fill(~valid, 0.0)
    return per_round.sum() / valid.sum().clamp_min(1)


def _real_token_logits(logits: Tensor, token_mask: Tensor) -> Tensor:
    """(N, T, V) -> the (K, V) rows at the K True positions; (K, V) rows are returned as is."""
    return logits if logits.dim() == 2 else logits[token_mask]


def sequence_log_prob(logits: Tensor, targets: Tensor, token_mask: Tensor) -> Tensor:
    """Summed log-likelihood of each target sequence -> (N,).

    targets (N, T), token_mask (N, T) bool; logits (N, T, V), or only the (K, V) rows at the K
    True positions of ``token_mask`` (row-major order), which is how G computes them: the vocab
    projection, the dominant cost, is skipped at padding positions.
    """
    rows = _real_token_logits(logits, token_mask).float()  # (K, V)
    picked = -F.cross_entropy(rows, targets[token_mask], reduction="none")  # (K,)
    seq = token_mask.nonzero()[:, 0]  # (K,) sequence of every real token
    return picked.new_zeros(token_mask.shape[0]).index_add(0, seq, picked)


def masked_token_nll(logits: Tensor, targets: Tensor, token_mask: Tensor) -> Tensor:
    """Mean negative log-likelihood over the real target tokens (the MLE loss L_MLE).

    targets (N, T), token_mask (N, T) bool, logits (N, T, V) or (K, V) as in
    :func:`sequence_log_prob`: mean over all True tokens of the batch (each token counts once,
    so longer answers weigh more); 0 when there is none.
    """
    rows = _real_token_logits(logits, token_mask).float()  # (K, V)
    nll = F.cross_entropy(rows, targets[token_mask], reduction="none")  # (K,)
    return nll.sum() / max(nll.shape[0], 1)
