import math

import pytest
import torch

from pipeline.models.gumbel import (
    embed_one_hot,
    gumbel_softmax_relaxed,
    gumbel_softmax_st,
    sample_gumbel,
)


def _noise(shape, seed=0):
    return sample_gumbel(shape, generator=torch.Generator().manual_seed(seed))


def test_forward_is_exactly_one_hot_at_the_gumbel_max():
    torch.manual_seed(0)
    logits = torch.randn(64, 20)
    noise = _noise(logits.shape)
    y = gumbel_softmax_st(logits, 0.5, noise=noise)
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(y.sum(-1), torch.ones(64))
    expected = (torch.log_softmax(logits, -1) + noise).argmax(-1)
    assert torch.equal(y.argmax(-1), expected)


def test_relaxed_sample_is_eq6_computed_directly():
    torch.manual_seed(1)
    logits = torch.randn(3, 5, dtype=torch.float64)
    noise = _noise(logits.shape).double()
    tau = 0.5
    y = gumbel_softmax_relaxed(logits, tau, noise)
    for r in range(3):
        z = sum(math.exp(logits[r, j].item()) for j in range(5))
        p = [math.exp(logits[r, j].item()) / z for j in range(5)]
        num = [math.exp((math.log(p[i]) + noise[r, i].item()) / tau) for i in range(5)]
        for i in range(5):
            assert y[r, i].item() == pytest.approx(num[i] / sum(num), rel=1e-10)


def test_straight_through_gradient_is_the_relaxed_gradient():
    torch.manual_seed(2)
    base = torch.randn(4, 7)
    noise = _noise(base.shape)
    weights = torch.randn(4, 7)
    logits = base.clone().requires_grad_()
    (gumbel_softmax_st(logits, 0.5, noise=noise) * weights).sum().backward()
    st_grad = logits.grad.clone()
    logits.grad = None
    (gumbel_softmax_relaxed(logits, 0.5, noise) * weights).sum().backward()
    assert st_grad.abs().sum() > 0
    torch.testing.assert_close(st_grad, logits.grad)


def test_sampling_frequencies_match_softmax():
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0, 0.5])
    n = 20000
    gen = torch.Generator().manual_seed(3)
    y = gumbel_softmax_st(logits.expand(n, 5), 0.5, generator=gen)
    counts = y.sum(0)
    expected = torch.softmax(logits, -1) * n
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 18.47  # chi-square, 4 degrees of freedom, p = 0.001


def test_seeded_and_forbidden_tokens():
    logits = torch.randn(50, 6)
    logits[:, 2] = float("-inf")
    a = gumbel_softmax_st(logits, 1.0, generator=torch.Generator().manual_seed(4))
    b = gumbel_softmax_st(logits, 1.0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert a[:, 2].sum() == 0
    assert not torch.isnan(a).any()
    with pytest.raises(ValueError):
        gumbel_softmax_st(logits, 0.0)


def test_gumbel_noise_has_the_standard_gumbel_mean():
    g = _noise((200000,), seed=5)
    assert torch.isfinite(g).all()
    assert g.mean().item() == pytest.approx(0.5772, abs=0.01)  # Euler-Mascheroni constant


def test_embed_one_hot_equals_the_dense_product_with_its_gradients():
    torch.manual_seed(0)
    logits, weight = torch.randn(7, 2, 11), torch.randn(11, 4)
    noise = _noise(logits.shape)
    zeroed = (torch.arange(7) % 3 != 0).view(7, 1, 1)  # every third row zeroed (after <end>)
    results = []
    for fn in (embed_one_hot, torch.matmul):
        lg, w = logits.clone().requires_grad_(), weight.clone().requires_grad_()
        y = gumbel_softmax_st(lg, 0.5, noise=noise) * zeroed  # (7, 2, V)
        out = fn(y, w)  # (7, 2, 4)
        (out * torch.arange(56.0).view(7, 2, 4)).sum().backward()
        results.append((out.detach(), lg.grad, w.grad))
    (ours, ours_lg, ours_w), (dense, dense_lg, dense_w) = results
    assert torch.equal(ours, dense)  # a gather is exact
    assert torch.allclose(ours_lg, dense_lg, atol=1e-6) and ours_lg.abs().sum() > 0
    assert torch.allclose(ours_w, dense_w, atol=1e-6) and ours_w.abs().sum() > 0


def test_embed_one_hot_takes_the_dense_product_for_soft_rows():
    weight = torch.randn(5, 3)
    soft = torch.softmax(torch.randn(2, 4, 5), dim=-1)  # (2, 4, V): every entry non-zero
    assert torch.allclose(embed_one_hot(soft, weight), soft @ weight)
    negative = -torch.eye(5)[:2]  # one non-zero per row, but negative
    assert torch.equal(embed_one_hot(negative, weight), negative @ weight)


@pytest.mark.parametrize("gap", [8.0, 4.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_samples_are_exact_under_bf16_autocast(gap, dtype):
    """A peaked 9000-way distribution: frequencies of 20 000 draws match the softmax of the
    logits, whatever the compute dtype (bf16 noise once turned p = 0.249 into 0.998)."""
    v, n, chunk = 9000, 20_000, 5000
    logits = torch.zeros(chunk, v, dtype=dtype)
    logits[:, 0] = gap
    p = torch.softmax(logits[0].double(), -1)[0].item()  # of the logits as given
    gen = torch.Generator().manual_seed(0)
    hits = 0
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        for _ in range(n // chunk):
            y = gumbel_softmax_st(logits, 0.5, generator=gen)
            assert y.dtype == dtype and torch.equal(y.sum(-1), torch.ones(chunk, dtype=dtype))
            hits += int((y.argmax(-1) == 0).sum())
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(hits / n - p) < 5 * sigma, (hits / n, p)
