import pytest
import torch

from pipeline.config import ModelConfig
from pipeline.data.dataset import batches
from pipeline.data.loaders import load_data
from pipeline.errors import InputError
from pipeline.models.discriminator import DiscriminativeModel
from pipeline.models.generator import GenerativeModel
from pipeline.models.variant import Variant
from pipeline.models.variants import build_model

CFG = ModelConfig(embed_dim=16, hidden=24, dropout=0.0)


@pytest.mark.parametrize(
    ("name", "kind", "encoder", "loss", "attention"),
    [
        ("hciae-g-mle", "g", "hciae", "mle", False),
        ("lf-g", "g", "lf", "mle", False),
        ("lf-d", "d", "lf", "ce", False),
        ("hciae-d-mle", "d", "hciae", "ce", False),
        ("hciae-d-np", "d", "hciae", "np", False),
        ("hciae-d-np-att", "d", "hciae", "np", True),
        ("mn-d-att", "d", "mn", "ce", True),
    ],
)
def test_variant_names(name, kind, encoder, loss, attention):
    v = Variant.parse(name)
    assert (v.kind, v.encoder, v.loss, v.attention) == (kind, encoder, loss, attention)


@pytest.mark.parametrize("name", ["hciae", "foo-g", "hciae-g-np", "hciae-d-xx", "lf-d-att-np"])
def test_bad_variant_names(name):
    with pytest.raises(InputError, match="unknown model variant"):
        Variant.parse(name)


@pytest.fixture(scope="module")
def batch(tiny_data):
    prepared, features = tiny_data
    return next(iter(batches(load_data(prepared, features, "train"), 4, shuffle=False)))


@pytest.mark.parametrize("name", ["hciae-g-mle", "hciae-d-np-att", "hciae-d-mle", "mn-d"])
def test_loss_terms_and_scores(batch, name):
    torch.manual_seed(0)
    model = build_model(name, 200, CFG, negatives=7)
    loss_sum, count = model(batch)
    assert loss_sum.ndim == 0 and torch.isfinite(loss_sum) and count > 0
    loss_sum.backward()
    assert model.embedding.weight.grad.abs().sum() > 0
    scores = model.score_options(batch)
    assert scores.shape == (4, 10, 100) and torch.isfinite(scores).all()


def test_g_scores_are_option_log_likelihoods(batch):
    """G ranks by summed log p(option incl. <end>): check one option against teacher forcing."""
    torch.manual_seed(0)
    model = GenerativeModel(Variant.parse("hciae-g"), 200, CFG).eval()
    scores = model.score_options(batch)
    e = model.encode(batch)[:1]  # round 0 of dialog 0
    tokens = batch.options[0, 0, 5, : batch.options_len[0, 0, 5]].tolist()
    h0, c0, _ = model.decoder.init_state(e)
    inputs = [2, *tokens]  # <start> a_1 .. a_L, predicting a_1 .. a_L <end>
    targets = [*tokens, 3]
    words = model.embedding(torch.tensor([inputs]))  # (1, T, E)
    x = torch.cat([words, e.unsqueeze(1).expand(-1, len(inputs), -1)], -1)  # [w_t, e_t]
    out, _ = model.decoder.lstm(x, (h0, c0))
    logits = model.decoder.out(out)[0].log_softmax(-1).detach()
    logp = sum(float(logits[t, targets[t]]) for t in range(len(targets)))
    assert scores[0, 0, 5].item() == pytest.approx(logp, abs=1e-4)


def test_d_candidates_exclude_ground_truth_from_negatives(batch):
    model = DiscriminativeModel(Variant.parse("hciae-d-np"), 200, CFG, negatives=20)
    _, _, positions = model.candidates(batch)
    gt = batch.gt_index.reshape(-1)
    assert (positions[:, 0] == gt).all()
    assert not (positions[:, 1:] == gt.unsqueeze(1)).any()
    assert all(len(set(row.tolist())) == 21 for row in positions)


def test_d_negatives_are_uniform_over_the_other_options(batch):
    model = DiscriminativeModel(Variant.parse("hciae-d-np"), 200, CFG, negatives=4)
    torch.manual_seed(0)
    picked = torch.cat([model.candidates(batch)[2][0, 1:] for _ in range(2000)])  # round 0
    counts = torch.bincount(picked, minlength=100).float()
    others = torch.arange(100) != batch.gt_index.reshape(-1)[0]
    assert counts[~others].sum() == 0
    assert counts[others].min() > 0.6 * counts[others].mean()  # each about 4/99 of the draws


def test_distinct_answer_encoding_equals_direct_encoding(batch):
    torch.manual_seed(0)
    model = DiscriminativeModel(Variant.parse("hciae-d-np-att"), 200, CFG).eval()
    direct = model.answer_encoder.score(
        model.encode(batch), batch.options.flatten(0, 1), batch.options_len.flatten(0, 1)
    )  # (B*R, O)
    torch.testing.assert_close(model.score_options(batch).flatten(0, 1), direct)


def _with_copy_and_empty(batch):
    """Only round (0, 0), in which option 5 is a copy of the ground truth's tokens and option 6
    is empty (one round alone: an extra negative moves its loss by ~1 %)."""
    import dataclasses

    options, options_len = batch.options.clone(), batch.options_len.clone()
    gt = int(batch.gt_index[0, 0])
    assert gt not in (5, 6)
    options[0, 0, 5], options_len[0, 0, 5] = options[0, 0, gt], options_len[0, 0, gt]
    options[0, 0, 6], options_len[0, 0, 6] = 0, 0
    num_rounds = torch.zeros_like(batch.num_rounds)
    num_rounds[0] = 1
    return dataclasses.replace(
        batch, options=options, options_len=options_len, num_rounds=num_rounds
    )


@pytest.mark.parametrize("loss", ["np", "mle"])
def test_d_loss_never_uses_a_copy_of_the_answer_or_an_empty_option(batch, loss):
    """D's loss on a batch equals a direct N-pair / cross-entropy over the real negatives."""
    import torch.nn.functional as F

    b = _with_copy_and_empty(batch)
    torch.manual_seed(0)
    # l2 > 0: without it N-pair over all options *is* the options' softmax cross-entropy, and
    # a swap of the two losses could not be seen
    variant = Variant.parse(f"hciae-d-{loss}")
    model = DiscriminativeModel(variant, 200, CFG, negatives=99, l2=0.05).eval()
    torch.manual_seed(1)
    loss_sum, count = model(b)
    with torch.no_grad():  # with all 99 negatives drawn, the draw's order does not matter
        e = model.encode(b)  # (M, D)
        m, o, la = b.options.reshape(-1, 100, b.options.shape[-1]).shape
        opts, lens = b.options.reshape(m, o, la), b.options_len.reshape(m, o)
        f = model.encode_answers(opts, lens)  # (M, 100, D)
    gt = b.gt_index.reshape(-1)
    keep = (b.round_mask & (b.answer_len > 0)).reshape(-1)
    total = 0.0
    for i in torch.nonzero(keep).squeeze(1).tolist():
        same = (opts[i] == opts[i, gt[i]]).all(-1) & (lens[i] == lens[i, gt[i]])
        real = (lens[i] > 0) & ~same
        real[gt[i]] = False
        scores = f[i] @ e[i]  # (100,)
        if loss == "np":
            margins = scores[real] - scores[gt[i]]
            total += float(torch.logsumexp(torch.cat([torch.zeros(1), margins]), 0))
            neg_sq = (f[i][real] ** 2).sum(-1).mean()
            total += model.l2 * float((e[i] ** 2).sum() + (f[i, gt[i]] ** 2).sum() + neg_sq)
        else:
            pool = torch.cat([scores[gt[i]].view(1), scores[real]])
            total += float(F.cross_entropy(pool.view(1, -1), torch.zeros(1, dtype=torch.long)))
    assert int(count) == int(keep.sum())
    assert int(count) == 1 and float(loss_sum.detach()) == pytest.approx(total, rel=1e-5)


def test_unique_rows_is_torch_unique_dim0():
    from pipeline.models.discriminator import unique_rows

    g = torch.Generator().manual_seed(0)
    rows = torch.randint(0, 4, (3000, 6), generator=g)
    rows[:, 3:] = torch.randint(0, 2, (3000, 3), generator=g)
    want, want_inverse = torch.unique(rows, dim=0, return_inverse=True)
    got, inverse = unique_rows(rows)
    assert torch.equal(got, want) and torch.equal(inverse, want_inverse)
    assert torch.equal(got[inverse], rows)
