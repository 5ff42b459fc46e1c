"""Knowledge transfer from D to G (paper §4.3) and the adversarial variants of Table 4 (§5.2).

G-DIS (``mode="dis"``): G starts from the MLE-pretrained generator, D (HCIAE-D-NP-ATT) is frozen.
For every round of a batch (all rounds in one pass) G samples an answer â with the
straight-through Gumbel-softmax sampler (Eq. 6, ``AnswerDecoder.gumbel_rollout``) and D scores it:

    L_G   = mean_t log(1 + exp(e_t^T f(a_t^gt) - e_t^T f(â_t)))                   (Eq. 5)
    loss  = L_G + alpha * L_MLE                 (§5; L_MLE teacher-forced, mean per token)

One objective, one optimizer step (the authors' code took two separate steps).

Which e_t? Eq. 5 scores in D's metric space, so e_t is **D's** encoding of (image, history,
question), paired with D's answer embedding f; G's own encoding only conditions the sampler. G
cannot change e_t or f(a^gt) (they depend on D and the data only), so both are computed without a
graph; gradients flow from the score e_t^T f(â_t) through D's answer encoder into the one-hot
sample and on into G. D's parameters have ``requires_grad=False`` and D stays in eval mode, so no
gradient is accumulated for them and D is bit-identical after training.

Table 4 (``mode="gan1"``/``"gan2"``): D keeps learning, alternating with G on every batch: first
G's step exactly as in G-DIS against the current D, then one D step on the same batch that reuses
G's sample (detached; D sees a discrete answer):

* ``gan1``: L_D = -L_G (ground truth vs G's sample only), the paper's literal definition;
* ``gan2``: D's N-pair loss (Eq. 4) with G's sample as one more negative beside the incorrect
  options that D's pretraining drew (``negatives`` of them, L2 regulariser ``l2``).

One Adam optimizer holds G's and D's parameters; each step backpropagates into one model only
(the other's gradients are None and Adam skips them), so this is exactly two Adams with one lr.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import Tensor, nn

from pipeline.atomic import sha256_file
from pipeline.config import LoopConfig, PretrainConfig, TransferConfig
from pipeline.data.batch import DialogBatch, flat_rounds
from pipeline.data.loaders import data_digest, epoch_loaders, load_data
from pipeline.data.vocab import PAD_ID, Vocabulary
from pipeline.errors import InputError
from pipeline.evaluation.evaluate import retrieval_metrics
from pipeline.models.checkpoint import load_checkpoint, load_model
from pipeline.models.decoder import Decoding, generate
from pipeline.models.discriminator import DiscriminativeModel
from pipeline.models.generator import GenerativeModel
from pipeline.models.losses import negatives_from_options, npair_loss, perceptual_loss
from pipeline.runtime import autocast, init_distributed, seed_everything
from pipeline.training.loop import RunFiles, Trainer

MODES = ("dis", "gan1", "gan2")


def transfer_variants(mode: str, encoder: str = "hciae") -> tuple[str, str | None]:
    """Names of the models a mode publishes: (G, D or None), e.g. ``hciae-g-gan1``."""
    if mode not in MODES:
        raise InputError(f"transfer mode {mode!r} is not one of {', '.join(MODES)}")
    return f"{encoder}-g-{mode}", (None if mode == "dis" else f"{encoder}-d-{mode}")


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Build the graph with ``module``'s parameters as constants (no grads accumulate there)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def sample_ids(one_hot: Tensor, lengths: Tensor) -> Tensor:
    """Straight-through one-hots (M, T, V) -> token ids (M, T), ``<pad>`` past ``lengths``."""
    steps = torch.arange(one_hot.shape[1], device=one_hot.device).unsqueeze(0)  # (1, T)
    ids = one_hot.detach().argmax(-1)  # (M, T)
    return ids.masked_fill(steps >= lengths.unsqueeze(1), PAD_ID)


@dataclass
class GeneratorTerms:
    l_g: Tensor  # Eq. 5, mean over rounds
    l_mle: Tensor  # mean token NLL of the ground truth
    rounds: Tensor  # rounds in the loss
    sample: Tensor  # (M, La, V) straight-through one-hots (with graph)
    sample_len: Tensor  # (M,)


class KnowledgeTransfer(nn.Module):
    """G trained against D. ``forward(batch) -> (loss_sum, rounds)`` of L_G + alpha * L_MLE.

    ``score_options`` is G's (validation = G's retrieval metrics). In the GAN modes,
    ``discriminator_step`` then updates D on the same batch (the trainer's ``after_step``).
    """

    def __init__(
        self, g: GenerativeModel, d: DiscriminativeModel, mode: str = "dis",
        alpha: float = 0.5, tau: float = 0.5,
    ):  # fmt: skip
        super().__init__()
        transfer_variants(mode)  # validates the mode
        if tau <= 0:
            raise InputError(f"transfer.tau must be > 0, got {tau}")
        self.g, self.d, self.mode, self.alpha, self.tau = g, d, mode, alpha, tau
        if mode == "dis":
            self.d.requires_grad_(False)
        self._sample: tuple[Tensor, Tensor] | None = None
        self._stats: dict[str, float] = {}

    def train(self, mode: bool = True) -> KnowledgeTransfer:
        super().train(mode)
        self.d.eval()  # D scores without dropout; a GAN D step turns it on for itself only
        return self

    @torch.no_grad()
    def score_options(self, batch: DialogBatch) -> Tensor:
        return self.g.score_options(batch)

    # ---- G's objective ----------------------------------------------------------------------
    def generator_terms(self, batch: DialogBatch) -> GeneratorTerms:
        """L_G (Eq. 5, in D's metric space) and L_MLE for every round of ``batch``."""
        mask = flat_rounds(batch)  # (M,)
        e_g = self.g.encode(batch)  # (M, H)
        mle_sum, tokens = self.g.mle_terms(e_g, batch)
        sample, sample_len = self.g.decoder.gumbel_rollout(
            e_g, self.tau, max_len=batch.answer.shape[-1]
        )  # (M, La, V), (M,)
        with frozen(self.d):
            with torch.no_grad():  # G cannot move these: no graph
                e_d = self.d.encode(batch)  # (M, H)
                f_gt = self.d.answer_encoder(
                    batch.answer.flatten(0, 1), batch.answer_len.flatten()
                )  # (M, H)
            f_hat = self.d.answer_encoder(sample, sample_len)  # (M, H), graph to G only
        l_g = perceptual_loss(e_d, f_gt, f_hat, mask)
        l_mle = mle_sum / tokens.clamp_min(1)
        return GeneratorTerms(l_g, l_mle, mask.sum(), sample, sample_len)

    def forward(self, batch: DialogBatch) -> tuple[Tensor, Tensor]:
        terms = self.generator_terms(batch)
        loss = terms.l_g + self.alpha * terms.l_mle
        if self.training:
            if self.mode != "dis":  # kept for D's step as ids: (M, La) instead of (M, La, V)
                self._sample = (sample_ids(terms.sample, terms.sample_len), terms.sample_len)
            n = float(terms.rounds)
            self._add_stats(train_lg=float(terms.l_g.detach()) * n)
            self._add_stats(train_lmle=float(terms.l_mle.detach()) * n, rounds=n)
        return loss * terms.rounds, terms.rounds

    # ---- D's objective (GAN modes) ----------------------------------------------------------
    def discriminator_loss(self, batch: DialogBatch, sample: Tensor, sample_len: Tensor) -> Tensor:
        """gan1: L_D = -L_G; gan2: N-pair (Eq. 4) with G's sample as an extra negative.

        ``sample``: G's answers as ids (M, La) or one-hots (M, La, V), ``sample_len`` (M,).
        """
        mask = flat_rounds(batch)  # (M,)
        e = self.d.encode(batch)  # (M, H)
        f_hat = self.d.answer_encoder(sample, sample_len)  # (M, H)
        if self.mode == "gan1":
            f_gt = self.d.answer_encoder(batch.answer.flatten(0, 1), batch.answer_len.flatten())
            return -perceptual_loss(e, f_gt, f_hat, mask)
        mask = mask & (batch.gt_index.reshape(-1) >= 0)
        tokens, lengths, _ = self.d.candidates(batch)  # ground truth first: (M, 1+K, La)
        f = self.d.encode_answers(tokens, lengths)  # (M, 1+K, H), as in D's pretraining
        zeros = torch.zeros(len(e), dtype=torch.long, device=e.device)
        f_gt, f_neg, neg_mask = negatives_from_options(f, zeros, lengths)
        f_neg = torch.cat([f_neg, f_hat.unsqueeze(1)], dim=1)  # (M, 2+K, H)
        neg_mask = torch.cat([neg_mask, neg_mask.new_ones(len(e), 1)], dim=1)  # (M, 2+K)
        return npair_loss(e, f_gt, f_neg, neg_mask, l2=self.d.l2, mask=mask)

    def discriminator_step(
        self,
        batch: DialogBatch,
        optimizer: torch.optim.Optimizer,
        grad_clip: float = 0.0,
        precision: str = "auto",
    ) -> None:
        """One D update on ``batch`` with G's sample from the preceding ``forward``."""
        if self._sample is None:
            raise RuntimeError("discriminator_step needs a preceding training forward")
        sample, sample_len = self._sample
        self._sample = None
        self.d.train()
        try:
            with autocast(sample.device, precision):
                loss = self.discriminator_loss(batch, sample, sample_len)
            optimizer.zero_grad(set_to_none=True)  # G's grads -> None: Adam leaves G alone
            loss.float().backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(self.d.parameters(), grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        finally:
            self.d.eval()
        n = float(flat_rounds(batch).sum())
        self._add_stats(train_ld=float(loss.detach()) * n, d_rounds=n)

    # ---- per-epoch training statistics ------------------------------------------------------
    def _add_stats(self, **values: float) -> None:
        for key, value in values.items():
            self._stats[key] = self._stats.get(key, 0.0) + value

    def epoch_stats(self) -> dict:
        """Mean L_G, L_MLE (and L_D) over the epoch's rounds; resets the accumulators."""
        s, self._stats = self._stats, {}
        out = {}
        if s.get("rounds"):
            out = {
                "train_lg": s["train_lg"] / s["rounds"],
                "train_lmle": s["train_lmle"] / s["rounds"],
            }
        if s.get("d_rounds"):
            out["train_ld"] = s["train_ld"] / s["d_rounds"]
        return out


# ---- did knowledge transfer? ---------------------------------------------------------------
DIAGNOSTICS = ("lg", "d_margin", "d_fooled", "d_greedy_rank")


@torch.no_grad()
def transfer_diagnostics(
    model: KnowledgeTransfer, batches, device: torch.device, precision: str, seed: int
) -> dict[str, float]:
    """What D thinks of G's answers on ``batches`` (the val split), over rounds with an answer.

    * ``lg``: L_G (Eq. 5) of G's sampled answers (ancestral sampling, the distribution of the
      Gumbel-softmax sampler's forward pass; ``torch.Generator`` seeded ``seed``);
    * ``d_margin``: mean s(â) − s(a_gt), D's score of the sample minus the ground truth's;
    * ``d_fooled``: share of rounds where D scores the sample above the ground truth;
    * ``d_greedy_rank``: the expected rank (ties: the mean rank) D gives G's greedy answer
      among the round's 100 options and itself, 1..101 (lower = more like what D prefers).
    """
    was_training = model.training
    model.eval()
    g, d = model.g, model.d
    gen = torch.Generator(device).manual_seed(seed)
    sums = dict.fromkeys(DIAGNOSTICS, 0.0)
    rounds = 0.0
    for batch in batches:
        batch = batch.to(device, non_blocking=True)
        with autocast(device, precision):
            mask = flat_rounds(batch) & (batch.gt_index.reshape(-1) >= 0)  # (M,)
            e_g = g.encode(batch)  # (M, H)
            la = batch.answer.shape[-1]
            sample = generate(g.decoder, e_g, Decoding("sample", max_len=la), gen)
            greedy = generate(g.decoder, e_g, Decoding("greedy", max_len=la))
            e_d = d.encode(batch)  # (M, H)
            f_gt = d.answer_encoder(batch.answer.flatten(0, 1), batch.answer_len.flatten())
            f_hat, f_greedy = d.answer_encoder(*sample), d.answer_encoder(*greedy)  # (M, H)
            f_opt = d.encode_answers(batch.options.flatten(0, 1), batch.options_len.flatten(0, 1))
            options = torch.einsum("md,mod->mo", e_d, f_opt).float()  # (M, O): score_options
            count = mask.sum()
            lg = perceptual_loss(e_d, f_gt, f_hat, mask).float() * count
        s_gt, s_hat = (e_d * f_gt).sum(-1).float(), (e_d * f_hat).sum(-1).float()  # (M,)
        s_greedy = (e_d * f_greedy).sum(-1).float().unsqueeze(1)  # (M, 1)
        rank = 1 + (options > s_greedy).sum(1) + (options == s_greedy).sum(1) / 2  # (M,)
        sums["lg"] += float(lg)
        sums["d_margin"] += float((s_hat - s_gt)[mask].sum())
        sums["d_fooled"] += float((s_hat > s_gt)[mask].sum())
        sums["d_greedy_rank"] += float(rank[mask].sum())
        rounds += float(count)
    model.train(was_training)
    return {k: v / max(rounds, 1.0) for k, v in sums.items()}


# ---- the run ------------------------------------------------------------------------------
@dataclass
class TransferFiles:
    resume_dir: Path  # resumable state (not a DVC output; see pipeline.training.loop)
    live_dir: Path  # the log (metrics.json) + curves.png
    g_out: Path  # models/<encoder>-g-<mode>/; its name is the published G's variant name
    d_out: Path | None = None  # models/<encoder>-d-<mode>/ (GAN modes only), likewise


def load_pair(
    g_path: Path, d_path: Path, cfg: TransferConfig
) -> tuple[GenerativeModel, DiscriminativeModel, dict, dict]:
    """The pretrained G and D with their checkpoint meta; clear errors for a wrong pair."""
    g_meta, d_meta = load_checkpoint(g_path)["meta"], load_checkpoint(d_path)["meta"]
    g = load_model(g_path)
    d = load_model(d_path, negatives=cfg.negatives, l2=cfg.l2)
    if not isinstance(g, GenerativeModel):
        raise InputError(f"{g_path}: {g_meta['variant']!r} is not a generative model (G)")
    if not isinstance(d, DiscriminativeModel):
        raise InputError(f"{d_path}: {d_meta['variant']!r} is not a discriminative model (D)")
    if g_meta["vocab_size"] != d_meta["vocab_size"]:
        raise InputError(
            f"{d_path}: vocabulary size {d_meta['vocab_size']} differs from G's "
            f"{g_meta['vocab_size']} ({g_path}): retrain both on the same prepared data"
        )
    return g, d, g_meta, d_meta


def run_transfer(
    mode: str,
    cfg: TransferConfig,
    g_path: Path,
    d_path: Path,
    prepared: Path,
    features: Path,
    files: TransferFiles,
    progress: bool = True,
) -> list[dict]:
    """Train G (and, in the GAN modes, D) for ``cfg.epochs``, resuming when possible.

    Publishes ``files.g_out/{best,last}.pt`` (and ``files.d_out`` for GAN modes) in the format
    of pretraining (``meta.variant`` = the new name, ``meta.arch`` = the source architecture).
    best.pt is the epoch with the best validation MRR of G, for G and D alike.
    """
    transfer_variants(mode)  # an unknown mode fails before anything is loaded
    dist, device = init_distributed(cfg.device)
    if dist.enabled and mode != "dis":
        raise InputError(f"transfer mode {mode}: run it in one process (no torchrun)")
    if (files.d_out is None) != (mode == "dis"):
        raise InputError(f"transfer mode {mode}: a D output is given exactly for gan1 and gan2")
    g_name = files.g_out.name  # the published variant names are the output directories' names
    d_name = files.d_out.name if files.d_out is not None else None
    g, d, g_meta, d_meta = load_pair(g_path, d_path, cfg)
    vocab = Vocabulary.load(prepared / "vocab.json")
    if len(vocab) != g_meta["vocab_size"]:
        raise InputError(
            f"{g_path}: vocabulary size {g_meta['vocab_size']} differs from "
            f"{prepared / 'vocab.json'} ({len(vocab)}): retrain the pretrained models"
        )
    train, val = load_data(prepared, features, "train"), load_data(prepared, features, "val")
    seed_everything(cfg.seed)
    model = KnowledgeTransfer(g, d, mode, alpha=cfg.alpha, tau=cfg.tau)
    settings = {"mode": mode, "alpha": cfg.alpha, "tau": cfg.tau}
    if mode == "gan2":
        settings |= {"negatives": cfg.negatives, "l2": cfg.l2}
    meta = {
        "variant": g_name,
        "transfer": settings,
        "g": g_meta,
        "d": d_meta,
        # new inputs -> start afresh
        "init": {"g": sha256_file(g_path)[:16], "d": sha256_file(d_path)[:16]},
    }
    loop = {f.name: getattr(cfg, f.name) for f in fields(LoopConfig)}
    train_cfg = PretrainConfig(**loop)  # constant lr (no lr_decay keys in the transfer section)
    train_batches, val_batches = epoch_loaders(train, val, train_cfg, dist, device)

    def validate(model: KnowledgeTransfer) -> dict:
        loader = val_batches()
        metrics = retrieval_metrics(model, loader, device, cfg.precision)
        if mode != "dis":
            d_metrics = retrieval_metrics(model.d, loader, device, cfg.precision)
            metrics |= {f"d_{k}": v for k, v in d_metrics.items()}
        return metrics | transfer_diagnostics(model, loader, device, cfg.precision, cfg.seed)

    def export(state: dict) -> dict[Path, dict]:
        """Split a transfer checkpoint into G's (and D's) in the pretraining format."""
        common = {k: v for k, v in state.items() if k not in ("model", "meta", "fingerprint")}
        common["transfer"] = settings

        def part(prefix: str) -> dict:
            return {k[len(prefix) :]: v for k, v in state["model"].items() if k.startswith(prefix)}

        out = {files.g_out: {**common, "model": part("g."), "meta": dict(g_meta, variant=g_name)}}
        if files.d_out is not None:
            out[files.d_out] = {**common, "model": part("d."), "meta": dict(d_meta, variant=d_name)}
        return out

    def after_step(batch: DialogBatch, optimizer: torch.optim.Optimizer) -> None:
        model.discriminator_step(batch, optimizer, cfg.grad_clip, cfg.precision)

    trainer = Trainer(
        model=model,
        cfg=train_cfg,
        files=RunFiles(resume_dir=files.resume_dir, out_dir=files.g_out, live_dir=files.live_dir),
        meta=meta,
        inputs=data_digest(prepared, features, ("train", "val")),
        train_batches=train_batches,
        validate=validate,
        device=device,
        dist=dist,
        progress=progress,
        after_step=None if mode == "dis" else after_step,
        epoch_stats=model.epoch_stats,
        export=export,
        validate_initial=True,  # epoch 0 = the pretrained G (and D): before transfer
    )
    return trainer.run()
