import json
import math
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.config import ModelConfig, TrainDConfig, TrainGConfig
from pipeline.errors import InputError
from pipeline.models.checkpoint import load_checkpoint
from pipeline.runtime import autocast, cpu_has_bf16
from pipeline.training.loop import RunFiles
from pipeline.training.pretrain import pretrain
from tests.conftest import REPO

MODEL = ModelConfig(embed_dim=16, hidden=24, dropout=0.1)


def _files(root: Path, name: str) -> RunFiles:
    return RunFiles(root / ".resume" / name, root / "models" / name, root / "live" / name)


def _state_dirs(files: RunFiles) -> list[Path]:
    return sorted(files.resume_dir.iterdir())


def _weights(path: Path) -> dict:
    return load_checkpoint(path)["model"]


def test_outputs_history_and_live_log(tiny_data, tmp_path):
    prepared, features = tiny_data
    cfg = TrainDConfig(epochs=2, batch_size=4, negatives=9, device="cpu")
    files = _files(tmp_path, "hciae-d-np-att")
    history = pretrain("hciae-d-np-att", cfg, MODEL, prepared, features, files, progress=False)
    assert [row["epoch"] for row in history] == [1, 2]
    assert {"train_loss", "val_mrr", "val_r@1", "val_r@5", "val_r@10", "val_mean_rank"} <= set(
        history[0]
    )
    assert (files.out_dir / "best.pt").exists() and (files.out_dir / "last.pt").exists()
    assert "optimizer" not in load_checkpoint(files.out_dir / "last.pt")
    assert (files.live_dir / "metrics.json").exists() and (files.live_dir / "curves.png").exists()
    log = json.loads((files.live_dir / "metrics.json").read_text())
    assert [row["epoch"] for row in log["history"]] == [1, 2]  # one row per epoch
    assert log["epoch"] == 2 and log["val_mrr"] == history[-1]["val_mrr"]  # the last values
    assert log["val_count"] == history[-1]["val_count"]  # listed, but a constant: not plotted
    assert all(set(row) == set(log["history"][0]) for row in log["history"])  # DVC plots need it
    assert "val_count" not in log["history"][0] and "val_mrr" in log["history"][0]
    assert not (files.live_dir / "plots").exists()  # no per-metric TSVs (one chart each)


def test_resume_after_interruption_gives_identical_weights(tiny_data, tmp_path, monkeypatch):
    prepared, features = tiny_data
    cfg = TrainGConfig(epochs=3, batch_size=4, device="cpu")
    straight = _files(tmp_path / "a", "hciae-g-mle")
    pretrain("hciae-g-mle", cfg, MODEL, prepared, features, straight, progress=False)

    import pipeline.training.loop as train_module

    real_epoch = train_module.Trainer._epoch

    def dies_in_epoch_2(self, model, optimizer, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(self, model, optimizer, epoch)

    resumed = _files(tmp_path / "b", "hciae-g-mle")
    monkeypatch.setattr(train_module.Trainer, "_epoch", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        pretrain("hciae-g-mle", cfg, MODEL, prepared, features, resumed, progress=False)
    (state_dir,) = _state_dirs(resumed)
    assert load_checkpoint(state_dir / "last.pt")["epoch"] == 0
    monkeypatch.setattr(train_module.Trainer, "_epoch", real_epoch)
    history = pretrain("hciae-g-mle", cfg, MODEL, prepared, features, resumed, progress=False)
    assert [row["epoch"] for row in history] == [1, 2, 3]
    a, b = _weights(straight.out_dir / "last.pt"), _weights(resumed.out_dir / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_changed_settings_restart_instead_of_resuming(tiny_data, tmp_path):
    prepared, features = tiny_data
    files = _files(tmp_path, "lf-g")
    first = pretrain("lf-g", TrainGConfig(epochs=2, batch_size=4, device="cpu"), MODEL, prepared,
                     features, files, progress=False)  # fmt: skip
    (old_state,) = _state_dirs(files)
    other_lr = TrainGConfig(epochs=2, batch_size=4, lr=1e-3, device="cpu")
    again = pretrain("lf-g", other_lr, MODEL, prepared, features, files, progress=False)
    # A wrongful resume would return the finished run's history as it is.
    assert [row["epoch"] for row in again] == [1, 2]
    assert again[0]["train_loss"] != first[0]["train_loss"]
    assert _state_dirs(files) != [old_state] and len(_state_dirs(files)) == 1  # old state gone


def test_changed_inputs_change_the_resume_key(tiny_data, tmp_path):
    from pipeline.data.loaders import data_digest

    prepared, features = tiny_data
    before = data_digest(prepared, features, ("train", "val"))
    copy = tmp_path / "prepared"
    copy.mkdir()
    for name in ("dialogs.h5", "vocab.json"):
        (copy / name).write_bytes((prepared / name).read_bytes())
    assert data_digest(copy, features, ("train", "val")) == before  # content, not path
    (copy / "vocab.json").write_text((prepared / "vocab.json").read_text().replace("]", ', "x"]'))
    assert data_digest(copy, features, ("train", "val"))["vocab.json"] != before["vocab.json"]


def test_checkpoint_meta_mismatch_is_a_clear_error(tiny_data, tmp_path):
    prepared, features = tiny_data
    files = _files(tmp_path, "lf-g")
    pretrain("lf-g", TrainGConfig(epochs=1, batch_size=4, device="cpu"), MODEL, prepared,
             features, files, progress=False)  # fmt: skip
    meta = dict(load_checkpoint(files.out_dir / "best.pt")["meta"], hidden=512)
    with pytest.raises(InputError, match="hidden is 24 there, 512 here"):
        load_checkpoint(files.out_dir / "best.pt", meta)


@pytest.mark.parametrize(
    ("stage", "variant", "extra", "tolerance"),
    [("train_g", "hciae-g-mle", {}, 2e-6),
     ("train_d", "hciae-d-np-att", {"negatives": 99}, 1e-4)],  # all 99: no draw per rank
)  # fmt: skip
def test_torchrun_two_processes_match_one_process(
    tiny_data, tmp_path, stage, variant, extra, tolerance
):
    """2 gloo processes with batch 2 each == 1 process with batch 4 (DDP averages gradients),
    to float32 rounding. Measured largest weight differences after 2 epochs: G 1.2e-7; D
    2.3e-5, because each rank encodes its own set of distinct answers (other matrix shapes,
    other rounding) and Adam's normalisation turns rounding-level differences of near-zero
    gradients into lr-sized steps. Dropping the x world factor of the loss gives 2.7e-4 (G)."""
    prepared, features = tiny_data
    params = {
        "model": {"embed_dim": 16, "hidden": 24, "dropout": 0.0},
        stage: {"epochs": 2, "batch_size": 4, "device": "cpu", **extra},
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    args = ["-m", f"stages.{stage}", "--variant", variant, "--prepared", str(prepared),
            "--features", str(features), "--out", f"models/{variant}", "--live", "live/g",
            "--resume", ".resume/g"]  # fmt: skip
    for name, launcher in (
        ("one", [sys.executable]),
        ("two", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                 "--nproc_per_node=2"]),
    ):  # fmt: skip
        cwd = tmp_path / name
        cwd.mkdir()
        (cwd / "params.yaml").write_text(yaml.safe_dump(params))
        proc = subprocess.run([*launcher, *args], cwd=cwd, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    one = _weights(tmp_path / f"one/models/{variant}/last.pt")
    two = _weights(tmp_path / f"two/models/{variant}/last.pt")
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert worst < tolerance, f"largest weight difference {worst:.2e}"


def test_autocast_bf16_runs_on_the_cpu_and_auto_keeps_fp32(monkeypatch):
    import pipeline.runtime

    linear, x = torch.nn.Linear(4, 3), torch.randn(2, 4)
    cpu = torch.device("cpu")
    monkeypatch.setattr(pipeline.runtime, "cpu_has_bf16", lambda: False)
    with pytest.raises(InputError, match="no native bf16"):
        autocast(cpu, "bf16")
    monkeypatch.setattr(pipeline.runtime, "cpu_has_bf16", lambda: True)
    with autocast(cpu, "bf16"):
        assert linear(x).dtype == torch.bfloat16
    for precision in ("auto", "fp32"):
        with autocast(cpu, precision):
            assert linear(x).dtype == torch.float32
    with pytest.raises(InputError, match="precision 'fp16'"):
        autocast(cpu, "fp16")


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16 (AVX512-BF16/AMX)")
def test_bf16_training_on_the_cpu_learns(tiny_data, tmp_path):
    prepared, features = tiny_data
    cfg = TrainGConfig(epochs=3, batch_size=4, lr=3e-3, device="cpu", precision="bf16")
    files = _files(tmp_path, "hciae-g-mle")
    history = pretrain("hciae-g-mle", cfg, MODEL, prepared, features, files, progress=False)
    losses = [row["train_loss"] for row in history]
    assert all(map(math.isfinite, losses)) and losses[-1] < losses[0]


@pytest.mark.parametrize("variant", ["lf-d", "hciae-d-np-att", "hciae-g-mle"])
def test_two_trainings_give_byte_identical_checkpoints(tiny_data, tmp_path, variant):
    """CPU reruns are bit-identical (D too: its copies of an answer are summed in a fixed
    order), so DVC never reruns downstream stages for a rerun's noise."""
    prepared, features = tiny_data
    wide = ModelConfig(embed_dim=32, hidden=64, dropout=0.1)  # big enough for parallel kernels
    cfg = (TrainGConfig if "-g" in variant else TrainDConfig)(
        epochs=2, batch_size=8, device="cpu", val_dialogs=2
    )
    runs = [_files(tmp_path / str(i), variant) for i in (1, 2)]
    for files in runs:
        pretrain(variant, cfg, wide, prepared, features, files, progress=False)
    for name in ("best.pt", "last.pt"):
        a, b = ((files.out_dir / name).read_bytes() for files in runs)
        assert a == b, name


def test_model_selection_never_reads_the_test_split(tiny_data, tmp_path):
    """Make the test split worthless — every option a copy of the ground truth — and the
    chosen checkpoints are byte-identical, while evaluate drops to exactly chance on it."""
    import shutil

    import h5py

    from pipeline.evaluation.evaluate import evaluate_model

    prepared, features = tiny_data
    broken = tmp_path / "prepared"
    shutil.copytree(prepared, broken)
    with h5py.File(broken / "dialogs.h5", "r+") as h5:
        options, gt = h5["test/options"][()], h5["test/gt_index"][()]  # (N, R, 100), (N, R)
        gt_option = np.take_along_axis(options, np.maximum(gt, 0)[..., None], 2)  # (N, R, 1)
        h5["test/options"][...] = np.broadcast_to(gt_option, options.shape)
    cfg = TrainGConfig(epochs=3, batch_size=4, device="cpu", patience=1)
    runs = {"real": prepared, "broken": broken}
    files = {name: _files(tmp_path / name, "hciae-g-mle") for name in runs}
    for name, data in runs.items():
        pretrain("hciae-g-mle", cfg, MODEL, data, features, files[name], progress=False)
    for ckpt in ("best.pt", "last.pt"):
        a, b = ((files[n].out_dir / ckpt).read_bytes() for n in runs)
        assert a == b, ckpt
    best = files["real"].out_dir / "best.pt"
    got = {
        name: evaluate_model(best, data, features, tmp_path / f"{name}.json",
                             tmp_path / f"{name}_ranks.json", progress=False)
        for name, data in runs.items()
    }  # fmt: skip
    assert got["broken"]["mean_rank"] == pytest.approx(50.5)  # all 100 options tie
    assert got["broken"]["mrr"] == pytest.approx(sum(1 / r for r in range(1, 101)) / 100)
    assert got["real"]["mean_rank"] != pytest.approx(50.5)  # real options: ranks, not all ties


class _Batch:
    def to(self, device, non_blocking=False):
        return self


class _Scalar(torch.nn.Module):
    """A one-parameter model: loss (w - 1)^2 per batch, so training moves w."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, batch):
        return (self.w - 1) ** 2, torch.tensor(1.0)


def _scripted_trainer(tmp_path, val_mrr: list[float], **cfg):
    from pipeline.training.loop import Trainer

    scores = iter(val_mrr)
    return Trainer(
        model=_Scalar(), cfg=TrainGConfig(device="cpu", **cfg), files=_files(tmp_path, "toy"),
        meta={"variant": "toy"}, inputs={}, train_batches=lambda epoch: [_Batch()] * 2,
        validate=lambda model: {"mrr": next(scores)}, progress=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("curve", "patience", "trained", "selected"),
    [
        ([0.3, 0.5, 0.4, 0.45, 0.2, 0.9], 2, 4, 2),  # best at 2, no better at 3, 4: stop
        ([0.3, 0.5, 0.4, 0.45, 0.2, 0.9], 3, 5, 2),
        ([0.3, 0.5, 0.4, 0.45, 0.2, 0.9], 4, 6, 6),  # one more epoch finds 0.9
        ([0.5, 0.4, 0.6, 0.1], 1, 2, 1),
        ([0.5, 0.4, 0.6, 0.1], 0, 4, 3),  # patience 0: all epochs; best.pt = argmax
        ([0.2, 0.2, 0.2], 1, 2, 1),  # a tie is no improvement: the first best is kept
    ],
)
def test_early_stopping_and_best_epoch_follow_the_val_curve(tmp_path, curve, patience, trained,
                                                             selected):  # fmt: skip
    trainer = _scripted_trainer(tmp_path, curve, epochs=len(curve), patience=patience)
    history = trainer.run()
    assert [row["epoch"] for row in history] == list(range(1, trained + 1))
    best = load_checkpoint(trainer.files.out_dir / "best.pt")
    assert best["epoch"] + 1 == selected
    mrrs = [row["val_mrr"] for row in history]
    assert best["epoch"] == mrrs.index(max(mrrs))  # the argmax of the logged curve


def test_lr_decays_by_steps(tmp_path):
    trainer = _scripted_trainer(tmp_path, [0.1] * 5, epochs=5, lr=0.1, lr_decay=0.5,
                                lr_decay_every=2)  # fmt: skip
    optimizer = torch.optim.Adam(trainer.model.parameters(), lr=1.0)
    lrs = []
    for epoch in range(5):
        trainer._set_lr(optimizer, epoch)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_one_progress_bar_per_run_shows_epoch_loss_and_val_mrr(tmp_path, monkeypatch):
    """One bar for all epochs (not one per epoch); its label follows the epoch, the running
    train loss and the last val MRR, and early stopping ends it before 100 %."""
    import pipeline.training.loop as loop
    from pipeline.progress import live_bar
    from tests.test_progress import last_line, terminal

    console, out = terminal()
    bars, texts = [], []

    @contextmanager
    def recorded(*args, **kwargs):
        with live_bar(*args, **kwargs, console=console) as bar:
            describe = bar.describe
            bar.describe = lambda text: (texts.append(text), describe(text))[-1]
            bars.append(bar)
            yield bar

    monkeypatch.setattr(loop, "live_bar", recorded)
    trainer = _scripted_trainer(tmp_path, [0.3, 0.5, 0.4, 0.45, 0.2], epochs=5, patience=2)
    trainer.progress = True
    history = trainer.run()
    assert len(history) == 4 and len(bars) == 1  # early stop after epoch 4
    assert bars[0].completed == 8  # 4 epochs x 2 batches
    loss = [format(row["train_loss"], ".4g") for row in history]
    assert texts[:5] == [
        "toy epoch 1/5",
        "toy epoch 1/5 loss 1",  # (w - 1)^2 at w = 0, the running mean after one batch
        f"toy epoch 1/5 loss {loss[0]}",
        f"toy epoch 1/5 loss {loss[0]} val MRR 0.3000",
        "toy epoch 2/5 val MRR 0.3000",  # the last val MRR stays until the next validation
    ]
    assert len(texts) == 4 * 4 + 1
    assert texts[-1] == f"toy epoch 4/5 loss {loss[3]} val MRR 0.4500 (early stop)"
    line = last_line(out)
    assert line.startswith(texts[-1]) and " 8/10 " in line, line  # stopped before 100 %
    assert re.search(r"\d:\d\d:\d\d \d:\d\d:\d\d$", line), line  # elapsed, remaining
