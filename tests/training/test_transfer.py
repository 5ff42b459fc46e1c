"""Knowledge transfer D -> G (Eq. 5 + alpha * L_MLE, ST Gumbel) and the GAN1/GAN2 variants."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from pipeline.config import ModelConfig, TransferConfig
from pipeline.data.batch import flat_rounds
from pipeline.data.dataset import batches
from pipeline.data.loaders import load_data
from pipeline.data.vocab import Vocabulary
from pipeline.models.checkpoint import load_checkpoint, load_model
from pipeline.models.variants import build_model, model_meta
from pipeline.training.transfer import (
    KnowledgeTransfer,
    TransferFiles,
    run_transfer,
    sample_ids,
    transfer_variants,
)
from stages.cli import app

MODEL = ModelConfig(embed_dim=16, hidden=24, dropout=0.0)  # no dropout: exact comparisons


def _save(model, vocab_size: int, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "meta": model_meta(model, vocab_size), "epoch": 0,
             "history": [], "best": None}  # fmt: skip
    torch.save(state, path)
    return path


@pytest.fixture(autouse=True)
def no_curves(monkeypatch):
    """Skip the matplotlib curves (seconds per epoch; tested with the trainer)."""
    monkeypatch.setattr("pipeline.plots.plot_curves", lambda *args, **kwargs: None)


@pytest.fixture(scope="module")
def pretrained(tiny_data, tmp_path_factory):
    """Tiny G (hciae-g-mle) and D (hciae-d-np-att) saved in the published checkpoint format."""
    prepared, _ = tiny_data
    root = tmp_path_factory.mktemp("pretrained")
    vocab_size = len(Vocabulary.load(prepared / "vocab.json"))
    torch.manual_seed(1)
    g = build_model("hciae-g-mle", vocab_size, MODEL)
    d = build_model("hciae-d-np-att", vocab_size, MODEL)
    g_path = _save(g, vocab_size, root / "models/hciae-g-mle/best.pt")
    d_path = _save(d, vocab_size, root / "models/hciae-d-np-att/best.pt")
    return g_path, d_path


@pytest.fixture(scope="module")
def batch(tiny_data):
    prepared, features = tiny_data
    return next(iter(batches(load_data(prepared, features, "train"), 4, shuffle=False)))


def _pair(pretrained, mode="dis", alpha=0.5, tau=0.5) -> KnowledgeTransfer:
    g_path, d_path = pretrained
    g, d = load_model(g_path), load_model(d_path, negatives=9, l2=1e-3)
    return KnowledgeTransfer(g, d, mode, alpha=alpha, tau=tau)


def _files(root, mode) -> TransferFiles:
    g_name, d_name = transfer_variants(mode)
    return TransferFiles(
        resume_dir=root / ".resume" / g_name,
        live_dir=root / "live" / g_name,
        g_out=root / "models" / g_name,
        d_out=root / "models" / d_name if d_name else None,
    )


def _cfg(**kw) -> TransferConfig:
    return TransferConfig(**{"epochs": 1, "batch_size": 4, "device": "cpu", "negatives": 9, **kw})


def test_eq5_uses_d_space_and_matches_a_direct_computation(pretrained, batch):
    model = _pair(pretrained).eval()
    torch.manual_seed(0)
    terms = model.generator_terms(batch)
    d, mask = model.d, flat_rounds(batch)
    with torch.no_grad():
        e = d.encode(batch).double()  # D's encoding of (image, history, question)
        f_gt = d.answer_encoder(batch.answer.flatten(0, 1), batch.answer_len.flatten()).double()
        f_hat = d.answer_encoder(terms.sample, terms.sample_len).double()
    direct = torch.log(1 + torch.exp((e * f_gt).sum(-1) - (e * f_hat).sum(-1)))[mask].mean()
    assert terms.rounds == mask.sum() > 0
    torch.testing.assert_close(terms.l_g.double(), direct, rtol=1e-5, atol=1e-6)


def test_straight_through_sample_is_one_hot_and_sends_gradients_to_g_logits(pretrained, batch):
    model = _pair(pretrained, alpha=0.0).eval()
    logits = []

    def keep(_module, _inputs, output):
        output.retain_grad()
        logits.append(output)

    model.g.decoder.out.register_forward_hook(keep)
    torch.manual_seed(0)
    terms = model.generator_terms(batch)
    sample = terms.sample.detach()  # (M, La, V)
    assert set(sample.unique().tolist()) <= {0.0, 1.0}
    steps = torch.arange(sample.shape[1]).unsqueeze(0)
    real = steps < terms.sample_len.unsqueeze(1)  # (M, La): one-hot before <end>, zero after
    assert torch.equal(sample.sum(-1), real.float())
    terms.l_g.backward()
    rollout = logits[1:]  # logits[0]: teacher forcing (MLE); then one per sampled step
    assert rollout and all(torch.isfinite(x.grad).all() for x in rollout)
    assert rollout[0].grad.abs().sum() > 0  # from D's score through the ST sample into G
    assert logits[0].grad is None or logits[0].grad.abs().sum() == 0
    assert all(p.grad is None for p in model.d.parameters())  # frozen D: no param grads


def test_combined_loss_is_lg_plus_alpha_times_mle(pretrained, batch):
    results = {}
    for alpha in (0.0, 0.5, 1.7):
        model = _pair(pretrained, alpha=alpha).eval()
        torch.manual_seed(3)  # the same Gumbel noise for every alpha
        loss_sum, count = model(batch)
        results[alpha] = float(loss_sum.detach() / count)
    g = model.g
    with torch.no_grad():
        mle_sum, tokens = g.mle_terms(g.encode(batch), batch)
    l_mle = float(mle_sum / tokens)
    assert l_mle > 0
    for alpha in (0.5, 1.7):
        assert results[alpha] == pytest.approx(results[0.0] + alpha * l_mle, rel=1e-5)


def test_alpha_zero_gradient_of_g_is_the_gradient_of_lg(pretrained, batch):
    model = _pair(pretrained, alpha=0.0).eval()
    torch.manual_seed(0)
    loss_sum, count = model(batch)
    (loss_sum / count).backward()
    combined = {n: p.grad.clone() for n, p in model.g.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    model.generator_terms(batch).l_g.backward()
    alone = {n: p.grad.clone() for n, p in model.g.named_parameters() if p.grad is not None}
    assert combined.keys() == alone.keys() and combined
    assert any(v.abs().sum() > 0 for v in alone.values())
    for name in alone:
        torch.testing.assert_close(combined[name], alone[name])


def test_dis_trains_g_keeps_d_bit_identical_and_publishes(pretrained, tiny_data, tmp_path):
    prepared, features = tiny_data
    g_path, d_path = pretrained
    files = _files(tmp_path, "dis")
    history = run_transfer("dis", _cfg(alpha=0.0), g_path, d_path, prepared, features, files,
                           progress=False)  # fmt: skip
    assert {"train_loss", "train_lg", "train_lmle", "val_mrr", "val_r@5"} <= set(history[0])
    (state_dir,) = files.resume_dir.iterdir()
    state = torch.load(state_dir / "last.pt", weights_only=True)
    d0, g0 = load_checkpoint(d_path)["model"], load_checkpoint(g_path)["model"]
    assert all(torch.equal(state["model"][f"d.{k}"], v) for k, v in d0.items())
    assert not all(torch.equal(state["model"][f"g.{k}"], v) for k, v in g0.items())
    published = load_checkpoint(files.g_out / "best.pt")
    assert published["meta"]["variant"] == "hciae-g-dis"
    assert published["meta"]["arch"] == "hciae-g-mle"
    assert set(published["model"]) == set(g0)
    assert load_model(files.g_out / "last.pt").variant.name == "hciae-g-mle"
    assert "train_lg" in json.loads((files.live_dir / "metrics.json").read_text())["history"][0]


@pytest.mark.parametrize("mode", ["gan1", "gan2"])
def test_gan_modes_update_d_and_publish_g_and_d(pretrained, tiny_data, tmp_path, mode):
    prepared, features = tiny_data
    g_path, d_path = pretrained
    files = _files(tmp_path, mode)
    history = run_transfer(mode, _cfg(), g_path, d_path, prepared, features, files,
                           progress=False)  # fmt: skip
    assert {"train_ld", "val_mrr", "val_d_mrr"} <= set(history[0])
    d0, g0 = load_checkpoint(d_path)["model"], load_checkpoint(g_path)["model"]
    d1 = load_checkpoint(files.d_out / "last.pt")
    g1 = load_checkpoint(files.g_out / "last.pt")
    assert d1["meta"]["variant"] == f"hciae-d-{mode}" and d1["meta"]["arch"] == "hciae-d-np-att"
    assert g1["meta"]["variant"] == f"hciae-g-{mode}"
    assert not all(torch.equal(d1["model"][k], v) for k, v in d0.items())
    assert not all(torch.equal(g1["model"][k], v) for k, v in g0.items())
    assert load_model(files.d_out / "best.pt").variant.name == "hciae-d-np-att"


def test_gan1_discriminator_loss_is_minus_lg(pretrained, batch):
    model = _pair(pretrained, mode="gan1").eval()
    torch.manual_seed(0)
    terms = model.generator_terms(batch)
    l_d = model.discriminator_loss(batch, terms.sample.detach(), terms.sample_len)
    torch.testing.assert_close(l_d, -terms.l_g.detach())
    ids = sample_ids(terms.sample, terms.sample_len)  # what the D step stores: same answers
    l_ids = model.discriminator_loss(batch, ids, terms.sample_len)
    torch.testing.assert_close(l_ids, l_d)


def test_gan2_is_npair_with_g_sample_as_an_extra_negative(pretrained, batch):
    model = _pair(pretrained, mode="gan2").eval()
    model.d.l2 = 0.0
    d, mask = model.d, flat_rounds(batch)
    torch.manual_seed(0)
    terms = model.generator_terms(batch)
    sample, sample_len = terms.sample.detach(), terms.sample_len
    with torch.no_grad():
        torch.manual_seed(5)  # the same incorrect options for both computations
        loss = model.discriminator_loss(batch, sample, sample_len)
        torch.manual_seed(5)
        e = d.encode(batch).double()  # (M, H)
        tokens, lengths, _ = d.candidates(batch)  # (M, 1+K, La), ground truth first
        f = d.answer_encoder(tokens, lengths).double()  # (M, 1+K, H)
        f_hat = d.answer_encoder(sample, sample_len).double()  # (M, H)
    s = torch.einsum("md,mkd->mk", e, f)  # (M, 1+K)
    s_hat = (e * f_hat).sum(-1)  # (M,)
    neg = torch.exp(s[:, 1:] - s[:, :1]) * (lengths[:, 1:] > 0)  # (M, K)
    direct = torch.log(1 + neg.sum(1) + torch.exp(s_hat - s[:, 0]))[mask].mean()
    torch.testing.assert_close(loss.double(), direct, rtol=1e-5, atol=1e-6)


def test_resume_after_interruption_gives_identical_weights(
    pretrained, tiny_data, tmp_path, monkeypatch
):
    import pipeline.training.loop as train_module

    prepared, features = tiny_data
    g_path, d_path = pretrained
    cfg = _cfg(epochs=2)
    straight = _files(tmp_path / "a", "gan1")
    run_transfer("gan1", cfg, g_path, d_path, prepared, features, straight, progress=False)
    real_epoch = train_module.Trainer._epoch

    def dies_in_epoch_2(self, model, optimizer, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(self, model, optimizer, epoch)

    resumed = _files(tmp_path / "b", "gan1")
    monkeypatch.setattr(train_module.Trainer, "_epoch", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run_transfer("gan1", cfg, g_path, d_path, prepared, features, resumed, progress=False)
    monkeypatch.setattr(train_module.Trainer, "_epoch", real_epoch)
    history = run_transfer("gan1", cfg, g_path, d_path, prepared, features, resumed,
                           progress=False)  # fmt: skip
    assert [row["epoch"] for row in history] == [1, 2]
    for out in ("g_out", "d_out"):
        a = load_checkpoint(getattr(straight, out) / "last.pt")["model"]
        b = load_checkpoint(getattr(resumed, out) / "last.pt")["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)


PATHS = ["--g", "g.pt", "--d", "d.pt", "--prepared", "p", "--features", "f", "--out-g", "g",
         "--live", "l", "--resume", "r"]  # fmt: skip


def test_cli_missing_pretrained_checkpoint_is_one_line_exit_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["transfer", "--mode", "dis", *PATHS, "--g", "nope/g.pt"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope/g.pt" in lines[0] and lines[0].startswith("error:")


def test_unknown_mode_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["transfer", "--mode", "gan3", *PATHS, "--out-d", "d"])
    assert result.exit_code == 1 and "gan3" in result.stderr


def test_diagnostics_match_a_direct_computation(pretrained, batch):
    """L_G, D's margin, the share D prefers the sample and D's rank of the greedy answer, each
    recomputed here from D's scores of explicitly generated answers."""
    from pipeline.models.decoder import Decoding, generate
    from pipeline.training.transfer import transfer_diagnostics

    model = _pair(pretrained)
    got = transfer_diagnostics(model, [batch], torch.device("cpu"), "fp32", seed=3)
    g, d = model.g, model.d
    mask = flat_rounds(batch) & (batch.gt_index.reshape(-1) >= 0)
    with torch.no_grad():
        e_g, e_d = g.encode(batch), d.encode(batch)
        gen = torch.Generator().manual_seed(3)
        la = batch.answer.shape[-1]
        sample, sample_len = generate(g.decoder, e_g, Decoding("sample", max_len=la), gen)
        greedy, greedy_len = generate(g.decoder, e_g, Decoding("greedy", max_len=la))
        s_gt = e_d * d.answer_encoder(batch.answer.flatten(0, 1), batch.answer_len.flatten())
        s_gt = s_gt.sum(-1)[mask]
        s_hat = (e_d * d.answer_encoder(sample, sample_len)).sum(-1)[mask]
        s_greedy = (e_d * d.answer_encoder(greedy, greedy_len)).sum(-1)[mask]
        options = d.score_options(batch).flatten(0, 1)[mask]  # (M', 100)
    ranks = [1 + sum(float(o > s) + 0.5 * float(o == s) for o in row) for row, s in
             zip(options.tolist(), s_greedy.tolist(), strict=True)]  # fmt: skip
    assert got["lg"] == pytest.approx(torch.log1p(torch.exp(s_gt - s_hat)).mean().item(), rel=1e-5)
    assert got["d_margin"] == pytest.approx((s_hat - s_gt).mean().item(), rel=1e-5, abs=1e-6)
    assert got["d_fooled"] == pytest.approx((s_hat > s_gt).float().mean().item())
    assert got["d_greedy_rank"] == pytest.approx(sum(ranks) / len(ranks))
    assert 1 <= got["d_greedy_rank"] <= 101


def test_epoch_zero_is_the_pretrained_g_and_never_selected(pretrained, tiny_data, tmp_path):
    prepared, features = tiny_data
    g_path, d_path = pretrained
    files = _files(tmp_path, "dis")
    run_transfer("dis", _cfg(epochs=2, lr=0.0), g_path, d_path, prepared, features, files,
                 progress=False)  # fmt: skip
    best = load_checkpoint(files.g_out / "best.pt")
    initial = best["initial"]
    assert initial["epoch"] == 0 and best["epoch"] >= 0  # epochs 1.. are the candidates
    assert {"val_mrr", "val_lg", "val_d_margin", "val_d_fooled", "val_d_greedy_rank"} <= set(
        initial
    )
    # lr 0: G does not move, so epoch 0 and epoch 1 see the same G (val is deterministic)
    assert best["history"][0]["val_mrr"] == pytest.approx(initial["val_mrr"])
    assert best["history"][0]["val_lg"] == pytest.approx(initial["val_lg"])
    log = json.loads((files.live_dir / "metrics.json").read_text())["history"]
    assert [row["epoch"] for row in log] == [0, 1, 2]
    assert log[0]["train_lg"] is None and log[1]["train_lg"] is not None  # epoch 0: no training


@pytest.mark.parametrize("mode", ["gan1", "gan2"])
def test_gan_steps_move_only_their_own_model_and_d_scores_g_in_eval(tiny_data, tmp_path, mode):
    """With dropout on: G's step leaves D bit-identical, D's step leaves G bit-identical, and D
    scores G's samples in eval mode (the same L_G as with D explicitly in eval)."""
    prepared, features = tiny_data
    vocab_size = len(Vocabulary.load(prepared / "vocab.json"))
    drop = ModelConfig(embed_dim=16, hidden=24, dropout=0.5)
    torch.manual_seed(2)
    g = build_model("hciae-g-mle", vocab_size, drop)
    d = build_model("hciae-d-np-att", vocab_size, drop, negatives=9)
    model = KnowledgeTransfer(g, d, mode).train()
    b = next(iter(batches(load_data(prepared, features, "train"), 4, shuffle=False)))
    torch.manual_seed(0)
    l_train = model.generator_terms(b).l_g
    model.d.eval()
    torch.manual_seed(0)
    assert torch.equal(model.generator_terms(b).l_g, l_train)  # D already was in eval

    def state(m):
        return {k: v.clone() for k, v in m.state_dict().items()}

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    d0, g0 = state(model.d), state(model.g)
    loss, n = model(b)
    optimizer.zero_grad(set_to_none=True)
    (loss / n).backward()
    optimizer.step()
    assert all(torch.equal(v, model.d.state_dict()[k]) for k, v in d0.items())
    assert not all(torch.equal(v, model.g.state_dict()[k]) for k, v in g0.items())
    g1 = state(model.g)
    model.discriminator_step(b, optimizer)
    assert all(torch.equal(v, model.g.state_dict()[k]) for k, v in g1.items())
    assert not all(torch.equal(v, model.d.state_dict()[k]) for k, v in d0.items())
