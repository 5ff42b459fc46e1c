"""Training-step throughput (QA-rounds/s): our G, D and transfer steps vs the authors' loop.

    python benchmarks/train.py                                   # 2-core CPU: --batch 32 --iters 3
    python benchmarks/train.py --device cuda --batch 128 --iters 10      # one GPU, paper batch

One step = forward + backward + Adam step on a batch of B dialogs x 10 rounds, paper dimensions
(embeddings 300, LSTMs 512, vocabulary 8964, 100 options of 8 tokens), synthetic data
(``benchmarks/synthetic.py``). Ours: every round of the batch in one pass, one optimizer step
(``GenerativeModel`` hciae-g-mle, ``DiscriminativeModel`` hciae-d-np-att with ``--negatives``,
``KnowledgeTransfer`` G-DIS: L_G + alpha * L_MLE), grad clipping 5 as the trainer does, bf16
autocast on CUDA (``--precision bf16``: also on the CPU). The baseline, in the same process on
the same batch, is a minimal port of the structure of the authors' public code
(jiasenlu/visDial.pytorch): plain ``nn.LSTM``/``nn.Linear`` of the same sizes, time-major
right-aligned inputs, a Python loop over the 10 rounds that re-encodes the history of every
round and calls ``optimizer.step()`` each round; G's vocabulary projection at every position;
D's 20 random options per round plus 30 in-batch negatives drawn in Python loops
(``sample_batch_neg``); transfer as two optimizer steps per round (MLE, then Gumbel / L_G) with
backpropagation through D's modules. fp32, no clipping (as the authors). After one warm-up step
each, ours and the baseline take turns step by step (the machine may be shared: a load change
then hits both alike). Figures are rounds/s = B * 10 / (seconds per batch).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import LA, OPTIONS, ROUNDS, VOCAB, synthetic_batch  # noqa: E402

from pipeline.config import ModelConfig  # noqa: E402
from pipeline.data.batch import DialogBatch
from pipeline.data.vocab import END_ID, START_ID
from pipeline.models.discriminator import DiscriminativeModel
from pipeline.models.encoders.common import history_facts
from pipeline.models.generator import GenerativeModel
from pipeline.models.variant import Variant
from pipeline.runtime import autocast  # noqa: E402
from pipeline.training.transfer import KnowledgeTransfer


@dataclass(frozen=True)
class Dims:
    """The authors' sizes; their e_t and f(a) have the word embedding's size (300)."""

    emb: int = 300
    hid: int = 512


REF_RANDOM_NEG, REF_BATCH_NEG = 20, 30


# ---- the reference-style port ------------------------------------------------------------------
class RefEncoder(nn.Module):
    """HCIAE as the authors coded it: one round at a time, history re-encoded every round."""

    def __init__(self, vocab: int, dims: Dims, dropout: float = 0.5):
        super().__init__()
        emb, hid = dims.emb, dims.hid
        self.embed = nn.Embedding(vocab, emb, padding_idx=0)  # their netW
        self.q_rnn, self.h_rnn = nn.LSTM(emb, hid), nn.LSTM(emb, hid)
        self.h_key, self.h_query = nn.Linear(hid, hid), nn.Linear(hid, hid)
        self.i_key, self.i_query = nn.Linear(hid, hid), nn.Linear(2 * hid, hid)
        self.h_score, self.i_score = nn.Linear(hid, 1), nn.Linear(hid, 1)
        self.region = nn.Linear(512, hid)
        self.fc = nn.Linear(3 * hid, emb)
        self.drop = nn.Dropout(dropout)

    def attend(self, keys, query, key_fc, query_fc, score_fc) -> Tensor:
        z = score_fc(
            self.drop(torch.tanh(key_fc(keys) + query_fc(query).unsqueeze(1)))
        )  # (B, N, 1)
        return (torch.softmax(z, dim=1) * keys).sum(1)  # (B, H)

    def forward(self, ques: Tensor, his: Tensor, img: Tensor, rnd: int):
        """ques (Lq, B), his (Lh, B*(rnd+1)) right-aligned, img (B, 49, 512) -> e (B, F), state."""
        embed = self.embed
        b = ques.shape[1]
        out, state = self.q_rnn(self.drop(embed(ques)))  # (Lq, B, H)
        m_q = out[-1]
        h_out, _ = self.h_rnn(self.drop(embed(his)))  # (Lh, B*(rnd+1), H)
        m_h = h_out[-1].view(b, rnd + 1, -1)  # (B, rnd+1, H)
        h_hat = self.attend(m_h, m_q, self.h_key, self.h_query, self.h_score)
        v = torch.tanh(self.region(img))  # (B, 49, H)
        v_hat = self.attend(v, torch.cat([m_q, h_hat], 1), self.i_key, self.i_query, self.i_score)
        return torch.tanh(self.fc(self.drop(torch.cat([m_q, h_hat, v_hat], 1)))), state


class RefGenerator(nn.Module):
    """Their netG: starts from the question LSTM's state, e_t as first input, log_softmax(3 x)."""

    def __init__(self, vocab: int, dims: Dims, dropout: float = 0.5):
        super().__init__()
        self.rnn, self.out = nn.LSTM(dims.emb, dims.hid), nn.Linear(dims.hid, vocab)
        self.drop = nn.Dropout(dropout)

    def forward(self, emb: Tensor, state):
        out, state = self.rnn(emb, state)  # (T, B, H)
        return F.log_softmax(3 * self.out(self.drop(out)), dim=-1), state  # (T, B, V)


class RefAnswerEncoder(nn.Module):
    """Their netD: LSTM, self-attention W2(dropout(tanh(W1 h))) masking pad/end, tanh(fc)."""

    def __init__(self, dims: Dims, dropout: float = 0.5):
        super().__init__()
        emb, hid = dims.emb, dims.hid
        self.rnn, self.w1, self.w2 = nn.LSTM(emb, hid), nn.Linear(hid, hid), nn.Linear(hid, 1)
        self.fc, self.drop = nn.Linear(hid, emb), nn.Dropout(dropout)

    def forward(self, emb: Tensor, tokens: Tensor) -> Tensor:
        """emb (T, N, E), tokens (T, N) -> (N, E)."""
        out, _ = self.rnn(self.drop(emb))  # (T, N, H)
        z = self.w2(self.drop(torch.tanh(self.w1(out)))).squeeze(-1)  # (T, N)
        z = z.masked_fill((tokens == 0) | (tokens == END_ID), -99999.0)
        alpha = torch.softmax(z, dim=0).unsqueeze(-1)  # (T, N, 1)
        return torch.tanh(self.fc(self.drop((alpha * out).sum(0))))


def ref_npair(feat, right, wrong, batch_wrong) -> Tensor:
    """Their nPairLoss: log(1 + sum exp(s_neg - s_gt)) + 0.1 * (unsquared Frobenius norms)."""
    right_dis = (feat * right).sum(-1, keepdim=True)  # (B, 1)
    wrong_dis = torch.einsum("bd,bnd->bn", feat, wrong)
    batch_dis = torch.einsum("bd,bnd->bn", feat, batch_wrong)
    score = (wrong_dis - right_dis).exp().sum(1) + (batch_dis - right_dis).exp().sum(1)
    norms = right.norm() + feat.norm() + wrong.norm() + batch_wrong.norm()
    return (torch.log(score + 1).sum() + 0.1 * norms) / feat.shape[0]


def sample_batch_neg(answer_idx: Tensor, neg_answer_idx: Tensor, out: Tensor, num: int) -> None:
    """The authors' in-batch negative sampler, element by element (as written in misc/utils.py)."""
    neg = neg_answer_idx.reshape(-1)
    for b in range(answer_idx.shape[0]):
        gt = answer_idx[b]
        for n in range(num):
            while True:
                r = int(random.random() * neg.shape[0])
                if gt != neg[r]:
                    out[b, n] = r
                    break


def right_align(tokens: Tensor, lengths: Tensor) -> Tensor:
    """Left-aligned (..., L) -> right-aligned (their questions and history)."""
    width = tokens.shape[-1]
    src = torch.arange(width) - (width - lengths.unsqueeze(-1))  # (..., L)
    return tokens.gather(-1, src.clamp(min=0)).masked_fill(src < 0, 0)


class RefData:
    """The batch in the authors' layout (what their DataLoader hands over; not timed)."""

    def __init__(self, batch: DialogBatch, device: torch.device):
        b = batch.question.shape[0]
        self.b = b
        self.img = batch.image.to(device)
        self.ques = right_align(batch.question, batch.question_len).permute(1, 2, 0).to(device)
        facts, fact_len = history_facts(batch)  # (B, R, 24)
        self.his = right_align(facts, fact_len).to(device)  # (B, R, 24)
        ans, ans_len = batch.answer, batch.answer_len  # (B, R, La)
        steps = torch.arange(LA + 1)
        target = F.pad(ans, (0, 1)).masked_fill(steps == ans_len.unsqueeze(-1), END_ID)
        inputs = torch.cat([torch.full((b, ROUNDS, 1), START_ID), ans], -1)  # (B, R, La+1)
        self.ans_in = inputs.permute(1, 2, 0).to(device)  # (R, La+1, B)
        self.ans_t = target.permute(1, 2, 0).to(device)  # (R, La+1, B)
        steps = steps.view(1, 1, 1, -1)
        opts = F.pad(batch.options, (0, 1))  # (B, R, O, La+1)
        self.opts = opts.masked_fill(steps == batch.options_len.unsqueeze(-1), END_ID).to(device)
        rows = batch.options.reshape(-1, LA)  # global answer ids, as in their HDF5
        _, ids = torch.unique(rows, dim=0, return_inverse=True)
        self.opt_ids = ids.view(b, ROUNDS, OPTIONS)  # (B, R, O), CPU as in their loop
        self.ans_ids = self.opt_ids.gather(2, batch.gt_index.unsqueeze(-1)).squeeze(-1)

    def his_round(self, rnd: int) -> Tensor:
        return self.his[:, : rnd + 1].reshape(-1, self.his.shape[-1]).t()  # (24, B*(rnd+1))


def ref_lm_loss(g: RefGenerator, e: Tensor, state, data: RefData, rnd: int, embed) -> Tensor:
    _, state = g(e.unsqueeze(0), state)  # e_t as the first input
    logprob, _ = g(embed(data.ans_in[rnd]), state)  # (T, B, V): every position
    target = data.ans_t[rnd]
    nll = -logprob.gather(2, target.unsqueeze(-1)).squeeze(-1) * (target > 0)
    return nll.sum() / (target > 0).sum()


def ref_wrong_answers(data: RefData, rnd: int) -> tuple[Tensor, Tensor]:
    """20 random options of the round per dialog (their loader; the GT is not excluded)."""
    picks = torch.tensor([random.sample(range(OPTIONS), REF_RANDOM_NEG) for _ in range(data.b)])
    wrong = data.opts[:, rnd].gather(
        1, picks.to(data.opts.device)[..., None].expand(-1, -1, LA + 1)
    )
    idx = torch.zeros(data.b, REF_BATCH_NEG, dtype=torch.long)
    sample_batch_neg(
        data.ans_ids[:, rnd], data.opt_ids[:, rnd].gather(1, picks), idx, REF_BATCH_NEG
    )
    return wrong.reshape(-1, LA + 1).t(), idx.to(data.opts.device)  # (T, B*20), (B, 30)


class RefG(nn.Module):
    def __init__(self, vocab: int, dims: Dims):
        super().__init__()
        self.enc, self.gen = RefEncoder(vocab, dims), RefGenerator(vocab, dims)

    def step(self, data: RefData, opt: torch.optim.Optimizer) -> None:
        for rnd in range(ROUNDS):
            e, state = self.enc(data.ques[rnd], data.his_round(rnd), data.img, rnd)
            loss = ref_lm_loss(self.gen, e, state, data, rnd, self.enc.embed)
            opt.zero_grad()
            loss.backward()
            opt.step()


class RefD(nn.Module):
    def __init__(self, vocab: int, dims: Dims):
        super().__init__()
        self.enc, self.ans = RefEncoder(vocab, dims), RefAnswerEncoder(dims)

    def features(self, tokens: Tensor, onehot: Tensor | None = None) -> Tensor:
        emb = self.enc.embed(tokens) if onehot is None else onehot @ self.enc.embed.weight
        return self.ans(emb, tokens)

    def step(self, data: RefData, opt: torch.optim.Optimizer) -> None:
        for rnd in range(ROUNDS):
            wrong, idx = ref_wrong_answers(data, rnd)
            e, _ = self.enc(data.ques[rnd], data.his_round(rnd), data.img, rnd)
            real = self.features(data.ans_t[rnd])  # (B, F)
            wrong_f = self.features(wrong)  # (B*20, F)
            batch_wrong = wrong_f.index_select(0, idx.view(-1)).view(data.b, -1, e.shape[-1])
            loss = ref_npair(e, real, wrong_f.view(data.b, -1, e.shape[-1]), batch_wrong)
            opt.zero_grad()
            loss.backward()
            opt.step()


class RefTransfer(nn.Module):
    """train_all.py with --update_LM: MLE step, then a Gumbel / L_G step through D, per round."""

    def __init__(self, vocab: int, dims: Dims, tau: float = 0.5):
        super().__init__()
        self.g, self.d, self.tau, self.vocab = RefG(vocab, dims), RefD(vocab, dims), tau, vocab

    def gumbel(self, e: Tensor, state, data: RefData, rnd: int) -> tuple[Tensor, Tensor]:
        _, state = self.g.gen(e.unsqueeze(0), state)
        token, onehots, idxs = data.ans_in[rnd][0], [], []
        for _ in range(LA + 1):
            logprob, state = self.g.gen(self.g.enc.embed(token).unsqueeze(0), state)
            u = torch.rand_like(logprob[0])
            y = torch.softmax(
                (logprob[0] - torch.log(-torch.log(u + 1e-20) + 1e-20)) / self.tau, -1
            )
            token = y.argmax(-1)
            hard = F.one_hot(token, self.vocab).to(y.dtype)
            onehots.append((hard - y).detach() + y)
            idxs.append(token)
        fake_idx = torch.stack(idxs)  # (T, B)
        fake_len = torch.full((data.b,), LA, dtype=torch.long, device=fake_idx.device)
        for di in range(LA, 0, -1):
            fake_len.masked_fill_(fake_idx[di] == END_ID, di)
        mask = torch.ones_like(fake_idx, dtype=torch.bool)
        for b in range(data.b):
            mask[: fake_len[b] + 1, b] = False
        return torch.stack(onehots), fake_idx.masked_fill(mask, 0)  # (T, B, V), (T, B)

    def step(self, data: RefData, opt_lm: torch.optim.Optimizer, opt_g: torch.optim.Optimizer):
        g, d = self.g, self.d
        for rnd in range(ROUNDS):
            ref_wrong_answers(data, rnd)  # their loop samples negatives although D is frozen
            ques, his = data.ques[rnd], data.his_round(rnd)
            e, state = g.enc(ques, his, data.img, rnd)
            loss = ref_lm_loss(g.gen, e, state, data, rnd, g.enc.embed)
            opt_lm.zero_grad()
            loss.backward()
            opt_lm.step()
            e, state = g.enc(ques, his, data.img, rnd)
            onehot, fake_idx = self.gumbel(e, state, data, rnd)
            e_d, _ = d.enc(ques, his, data.img, rnd)  # D's graph is built and backpropagated
            real, fake = d.features(data.ans_t[rnd]), d.features(fake_idx, onehot)
            margin = (e_d * real).sum(-1) - (e_d * fake).sum(-1)
            loss = F.softplus(margin).mean() + 0.1 * (fake.norm() + real.norm()) / data.b
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()


# ---- timing ------------------------------------------------------------------------------------
def adam(params) -> torch.optim.Adam:
    return torch.optim.Adam([p for p in params if p.requires_grad], lr=4e-4, betas=(0.8, 0.999))


def interleaved_seconds(
    steps: list[Callable[[], None]], iters: int, device: torch.device
) -> list[float]:
    """Total seconds of each step over ``iters`` calls, after one warm-up call of each.

    The steps take turns (A B A B ...), so a change in the machine's load (it is shared) hits
    all of them alike and their ratio stays fair.
    """

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    totals = [0.0] * len(steps)
    for step in steps:
        step()
    for _ in range(iters):
        for i, step in enumerate(steps):
            sync()
            start = time.perf_counter()
            step()
            sync()
            totals[i] += time.perf_counter() - start
    return totals


def ours_step(
    model: nn.Module, batch: DialogBatch, device: torch.device, precision: str = "auto"
) -> Callable[[], None]:
    optimizer = adam(model.parameters())

    def step() -> None:
        with autocast(device, precision):
            loss_sum, count = model(batch)
        loss = loss_sum.float() / count.clamp_min(1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    return step


def bench_part(part: str, batch: DialogBatch, args, device: torch.device) -> tuple[float, float]:
    """(ours, reference) rounds/s for part g | d | transfer."""
    cfg = ModelConfig(embed_dim=args.embed, hidden=args.hidden)
    dims, vocab = Dims(args.embed, args.hidden), args.vocab
    torch.manual_seed(args.seed)
    g = GenerativeModel(Variant.parse("hciae-g-mle"), vocab, cfg)
    d = DiscriminativeModel(Variant.parse("hciae-d-np-att"), vocab, cfg, args.negatives, 1e-3)
    if part == "transfer":
        ours = KnowledgeTransfer(g, d, "dis", alpha=0.5, tau=0.5)  # freezes D
    else:
        ours = g if part == "g" else d
    ours = ours.to(device).train()
    data = RefData(batch.to("cpu"), device)
    if part == "transfer":
        ref = RefTransfer(vocab, dims).to(device).train()
        opt_lm, opt_g = adam(ref.g.parameters()), adam(ref.g.parameters())  # two optimizers
        ref_step = lambda: ref.step(data, opt_lm, opt_g)  # noqa: E731
    else:
        ref = (RefG if part == "g" else RefD)(vocab, dims).to(device).train()
        opt = adam(ref.parameters())
        ref_step = lambda: ref.step(data, opt)  # noqa: E731
    ours_fn = ours_step(ours, batch, device, args.precision)
    seconds = interleaved_seconds([ours_fn, ref_step], args.iters, device)
    rounds = args.iters * batch.question.shape[0] * ROUNDS
    return rounds / seconds[0], rounds / seconds[1]


LABELS = {
    "g": "G step (hciae-g-mle, MLE)",
    "d": "D step (hciae-d-np-att, N-pair)",
    "transfer": "transfer step (G-DIS, L_G + a L_MLE)",
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=None, help="dialogs (default 32 CPU, 128 CUDA)")
    ap.add_argument("--iters", type=int, default=3, help="timed steps after one warm-up")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--negatives", type=int, default=99, help="our D's incorrect options/round")
    ap.add_argument("--popular", type=int, default=30, help="options/round from 100 frequent ones")
    ap.add_argument("--vocab", type=int, default=VOCAB)
    ap.add_argument("--embed", type=int, default=300, help="word embedding size (paper: 300)")
    ap.add_argument("--hidden", type=int, default=512, help="LSTM size (paper: 512)")
    ap.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "bf16"],
        help="ours: auto = bf16 on CUDA, fp32 on CPU; bf16: also on CPU (reference: fp32)",
    )  # fmt: skip
    ap.add_argument("--parts", default="g,d,transfer", help="comma list of g, d, transfer")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batch_size = args.batch or (128 if device.type == "cuda" else 32)
    batch = synthetic_batch(batch_size, args.vocab, args.popular, args.seed).to(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device: {where}, {torch.get_num_threads()} threads, load avg {os.getloadavg()[0]:.1f}; "
        f"batch {batch_size} dialogs x {ROUNDS} rounds, vocab {args.vocab}, "
        f"embed {args.embed}, LSTM {args.hidden}, "
        f"our D negatives {args.negatives}, our precision {args.precision}, "
        f"timed iters {args.iters}"
    )
    for part in args.parts.split(","):
        ours, ref = bench_part(part.strip(), batch, args, device)
        print(f"{LABELS[part.strip()]:38s} ours {ours:8.1f} rounds/s | reference {ref:8.1f} "
              f"rounds/s | ratio ours/reference {ours / ref:6.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
