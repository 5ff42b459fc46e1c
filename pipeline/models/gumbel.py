"""The Gumbel-softmax sampler with the straight-through estimator (paper §4.3, Eq. 6).

For a categorical x ~ Cat(p) and g_i iid standard Gumbel, ``argmax_i(log p_i + g_i)`` is an exact
sample of x (the Gumbel-max trick). Eq. 6 relaxes the argmax into a softmax with temperature tau:

    y_i = exp((log p_i + g_i) / tau) / sum_j exp((log p_j + g_j) / tau)          (Eq. 6)

Straight-through (Jang et al. 2017, §2.2; Bengio et al. 2013): the forward value is the exact
one-hot of ``argmax_i y_i`` (= the Gumbel-max sample), the backward pass uses d y / d logits.
The sampler computes in float32 whatever the autocast dtype (bf16 noise is not a sample).
"""

from __future__ import annotations

import torch
from torch import Tensor


def sample_gumbel(
    shape: torch.Size | tuple[int, ...],
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Standard Gumbel noise g = -log(-log u), u ~ U(0, 1), drawn from ``generator``."""
    # Drawn where the generator lives (a seeded CPU generator also serves CUDA tensors).
    where = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, device=where, dtype=dtype).to(device)
    # u may be exactly 0; clamping to the smallest normal keeps g finite (g >= -log(87.3)).
    u = u.clamp_min(torch.finfo(dtype).tiny)
    return -torch.log(-torch.log(u))


def gumbel_softmax_relaxed(logits: Tensor, tau: float, noise: Tensor) -> Tensor:
    """Eq. 6: softmax((log p + g) / tau) over the last dim, with p = softmax(logits)."""
    log_p = torch.log_softmax(logits, dim=-1)
    return torch.softmax((log_p + noise) / tau, dim=-1)


def gumbel_softmax_st(
    logits: Tensor,
    tau: float,
    generator: torch.Generator | None = None,
    noise: Tensor | None = None,
) -> Tensor:
    """One straight-through Gumbel-softmax sample per row of ``logits`` (..., V) (Eq. 6 + ST).

    Forward: an exact one-hot (..., V) at ``argmax(log p + g)``, i.e. a sample of softmax(logits).
    Backward: the gradient of the relaxed sample y of Eq. 6 (straight-through).
    ``noise`` (the Gumbel g, same shape as ``logits``) may be given; otherwise it is drawn from
    ``generator`` (seeded -> reproducible). Logits of -inf (forbidden tokens) are never sampled.
    """
    if tau <= 0:
        raise ValueError(f"Gumbel-softmax temperature must be > 0, got {tau}")
    # The sample is exact in any precision: noise, log-softmax and the relaxed softmax run in
    # float32 (float64 stays float64) whatever the autocast dtype. In bf16 the noise would take
    # ~530 distinct values and log p + g would be rounded: a token with p = 0.249 was drawn
    # 99.8 % of the time.
    work = torch.promote_types(logits.dtype, torch.float32)
    with torch.autocast(logits.device.type, enabled=False):
        if noise is None:
            noise = sample_gumbel(
                logits.shape, generator=generator, device=logits.device, dtype=work
            )
        y = gumbel_softmax_relaxed(logits.to(work), tau, noise.to(work))
        index = y.argmax(dim=-1, keepdim=True)  # (..., 1)
        y_hard = torch.zeros_like(y).scatter_(-1, index, 1.0)
        # y - y.detach() is exactly 0 forward and the identity backward, so the forward value is
        # the exact one-hot (the usual ``y_hard - y.detach() + y`` can miss 1.0 by an ulp).
        return (y_hard + (y - y.detach())).to(logits.dtype)  # back to the compute dtype


class _OneHotEmbed(torch.autograd.Function):
    """``one_hot @ weight`` for rows with one non-zero (or none): a gather forward, and a
    scatter for ``weight``'s gradient backward; the gradient of ``one_hot`` stays dense."""

    @staticmethod
    def forward(ctx, one_hot: Tensor, weight: Tensor) -> Tensor:
        value, index = one_hot.max(dim=-1)  # (...,), (...,)
        ctx.save_for_backward(value, index, weight)
        return weight[index] * value.unsqueeze(-1).to(weight.dtype)  # (..., E)

    @staticmethod
    def backward(ctx, grad: Tensor):
        value, index, weight = ctx.saved_tensors
        grad_one_hot = grad_weight = None
        if ctx.needs_input_grad[0]:
            flat = grad.reshape(-1, grad.shape[-1]) @ weight.t()  # (N, V): one GEMM, not a bmm
            grad_one_hot = flat.reshape(*grad.shape[:-1], -1)  # (..., V)
        if ctx.needs_input_grad[1]:
            rows = (grad * value.unsqueeze(-1).to(grad.dtype)).reshape(-1, grad.shape[-1])
            grad_weight = torch.zeros_like(weight).index_add_(0, index.reshape(-1), rows)
        return grad_one_hot, grad_weight


def embed_one_hot(one_hot: Tensor, weight: Tensor) -> Tensor:
    """``one_hot @ weight`` (..., V) x (V, E) -> (..., E), cheap for straight-through samples.

    Exact whenever every row of ``one_hot`` holds at most one non-zero value and it is positive
    (a sample of :func:`gumbel_softmax_st`, possibly zeroed): the product is then that row of
    ``weight`` times the value, so the forward pass is a gather instead of a (N, V) x (V, E)
    product and ``weight``'s gradient a scatter. Any other input (a relaxed, soft sample) takes
    the dense product, so the result is always ``one_hot @ weight``.
    """
    if not bool(((one_hot != 0).sum(dim=-1) <= 1).all()) or bool((one_hot < 0).any()):
        return one_hot @ weight
    return _OneHotEmbed.apply(one_hot, weight)
