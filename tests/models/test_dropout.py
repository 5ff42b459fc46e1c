import torch

from pipeline.models.dropout import Dropout


def test_keeps_each_element_with_probability_one_minus_p_and_rescales():
    torch.manual_seed(0)
    x = torch.full((1000, 1000), 2.0, requires_grad=True)
    y = Dropout(0.3).train()(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.003  # 1e6 draws: std 0.00046
    assert torch.allclose(y[kept], torch.tensor(2.0 / 0.7))
    y.sum().backward()
    assert torch.equal(x.grad, kept.float() / 0.7)  # d y / d x: mask / (1 - p)


def test_seeded_masks_repeat_and_differ_between_seeds():
    x = torch.ones(64, 64)
    drop = Dropout(0.5).train()
    masks = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        masks.append(drop(x) != 0)
    assert torch.equal(masks[0], masks[1])
    assert not torch.equal(masks[0], masks[2])


def test_identity_in_eval_and_at_p_zero_and_dtype_kept():
    x = torch.randn(8, 5)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert Dropout(0.5).train()(x.bfloat16()).dtype == torch.bfloat16
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
