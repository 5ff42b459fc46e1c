"""The training loop shared by every model: epochs, resume, validation, DDP, the log, curves.

A model's ``forward(batch)`` returns ``(loss_sum, count)``; the loss that is backpropagated is
``loss_sum * world / global_count``, so DistributedDataParallel's gradient *mean* over ranks is
exactly the gradient of the mean over the global batch — K processes with batch B/K train like one
process with batch B.

Resume: after every epoch ``<resume_dir>/<fingerprint>/last.pt`` holds the weights, the optimizer,
the epoch and the metric history. The fingerprint hashes everything that determines training —
the model and loop settings, and the digests of the input data (``inputs``) — so a rerun with
the same fingerprint continues after the last finished epoch, and a changed param or input never
resumes stale state. The resume directory lies outside the stage's DVC outputs (the stages use
``.resume/<stage>``, gitignored): no output is ``persist``, so DVC's run-cache can restore a
finished stage instead of rerunning it. State of other fingerprints is removed when a run
starts. Every epoch reseeds the RNGs from ``(seed, epoch)`` and shuffles with the same seed, so
an interrupted-and-resumed CPU run ends with the same weights as an uninterrupted one.

The log, ``<live_dir>/metrics.json`` (:func:`live_log`), is rewritten from the checkpoint
history at the start and after every epoch, so it never has gaps or repeated epochs after an
interruption: the last value of every metric (``dvc metrics show``) and the per-epoch
``history`` that ``dvc.yaml``'s top-level plots overlay across variants. It is one file, a DVC
metrics output, so DVC's run-cache restores it with the model (a directory of per-metric TSVs
would have to be a stage ``plots:`` output, one chart per metric per variant). ``curves.png`` is
drawn once, when the run publishes (≈ 0.6 s, as much as a demo epoch).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from pipeline.atomic import atomic_path
from pipeline.config import PretrainConfig
from pipeline.plots import plot_curves, plotted
from pipeline.progress import Bar, live_bar
from pipeline.runtime import Dist, autocast, seed_everything

SELECT_BY = "mrr"  # validation metric that picks best.pt


def bar_text(
    label: str, epoch: int, epochs: int, loss: float | None = None, mrr: float | None = None
) -> str:
    """The training bar's description: ``hciae-g-mle epoch 3/30 loss 2.345 val MRR 0.4123``
    (the running train loss of the epoch, the last validation's MRR once there is one)."""
    text = f"{label} epoch {epoch}/{epochs}"
    if loss is not None:
        text += f" loss {loss:.4g}"
    if mrr is not None:
        text += f" val MRR {mrr:.4f}"
    return text


@dataclass
class RunFiles:
    """Where one variant's training writes: resumable state, final models, the log."""

    resume_dir: Path  # resumable state, <resume_dir>/<fingerprint>/ (not a DVC output)
    out_dir: Path  # best.pt, last.pt (DVC-cached)
    live_dir: Path  # metrics.json (the log, :func:`live_log`), curves.png


@dataclass
class Trainer:
    model: nn.Module
    cfg: PretrainConfig
    files: RunFiles
    meta: dict  # saved with the weights; must match to load them
    inputs: dict  # digests of the input data (``pipeline.data.loaders.data_digest``)
    train_batches: Callable[[int], object]  # epoch -> iterable of DialogBatch
    validate: Callable[[nn.Module], dict]  # model -> metrics on the val split
    device: torch.device = torch.device("cpu")
    dist: Dist = field(default_factory=Dist)
    progress: bool = True
    # Optional hooks (knowledge transfer, ``pipeline.training.transfer``); None: plain training.
    after_step: Callable[[object, torch.optim.Optimizer], None] | None = None  # (batch, opt)
    epoch_stats: Callable[[], dict] | None = None  # extra train metrics of the finished epoch
    export: Callable[[dict], dict[Path, dict]] | None = None  # state -> {out_dir: state}
    # Validate the starting weights too (epoch 0: knowledge transfer's G-MLE). Logged at step 0
    # and kept in the checkpoints as ``initial``; never a candidate for best.pt.
    validate_initial: bool = False
    _initial: dict | None = field(default=None, init=False, repr=False)
    # The run's one progress bar (rank 0 only), and the val MRR it shows.
    _bar: Bar | None = field(default=None, init=False, repr=False)
    _last_mrr: float | None = field(default=None, init=False, repr=False)

    def fingerprint(self) -> str:
        """What determines the weights after epoch k (not ``epochs`` or ``patience``: a longer
        run resumes a shorter one)."""
        # epochs and patience say when to stop, not what an epoch computes
        cfg = dataclasses.replace(self.cfg, epochs=0, workers=0, patience=0)
        blob = {"meta": self.meta, "cfg": repr(cfg), "inputs": self.inputs}
        text = json.dumps(blob, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def state_dir(self) -> Path:
        """This run's resumable state: ``<resume_dir>/<fingerprint>``."""
        return self.files.resume_dir / self.fingerprint()

    def run(self) -> list[dict]:
        """Train to ``cfg.epochs`` (resuming when possible); returns the per-epoch history."""
        autocast(self.device, self.cfg.precision)  # a bad value fails before any work
        model = self.model.to(self.device)
        optimizer = torch.optim.Adam(
            model.parameters(), lr=self.cfg.lr, betas=(self.cfg.beta1, 0.999)
        )
        start, history, best = self._resume(model, optimizer)
        if self.validate_initial and self.dist.main and self._initial is None:
            self._initial = {"epoch": 0, **{f"val_{k}": v for k, v in self.validate(model).items()}}
        wrapped = DistributedDataParallel(model) if self.dist.enabled else model
        last = history[-1] if history else self._initial or {}
        self._last_mrr = last.get(f"val_{SELECT_BY}")
        enabled = self.progress and self.dist.main and start < self.cfg.epochs
        bar = live_bar(None, self._bar_text(start + 1), "batch", enabled)
        if self.dist.main:  # the log of a resumed run starts as the checkpoint's history
            shutil.rmtree(self.files.live_dir, ignore_errors=True)
            self._write_log(history)
        with bar as self._bar:
            self._train(model, wrapped, optimizer, start, history, best)
        self._bar = None
        if self.dist.main:
            self._publish(history)
        return history

    def _train(self, model, wrapped, optimizer, start: int, history: list, best) -> None:
        """Epochs ``start..cfg.epochs`` (or until early stopping); appends to ``history``."""
        for epoch in range(start, self.cfg.epochs):
            if self._stop_early(history):
                self._bar.describe(f"{self._bar.description} (early stop)")
                break
            self._set_lr(optimizer, epoch)
            seed_everything(self.cfg.seed * 1000 + epoch)
            train_loss = self._epoch(wrapped, optimizer, epoch)
            metrics = {"epoch": epoch + 1, "train_loss": train_loss}
            if self.epoch_stats is not None:
                metrics |= self.epoch_stats()
            if self.dist.main:
                metrics |= {f"val_{k}": v for k, v in self.validate(model).items()}
                history.append(metrics)
                self._last_mrr = metrics[f"val_{SELECT_BY}"]
                self._bar.describe(self._bar_text(epoch + 1, train_loss))
                if best is None or metrics[f"val_{SELECT_BY}"] > best:
                    best = metrics[f"val_{SELECT_BY}"]
                    self._save(self.state_dir / "best.pt", model, None, epoch, history, best)
                self._save(self.state_dir / "last.pt", model, optimizer, epoch, history, best)
                self._write_log(history)
            self.dist.barrier()

    def _bar_text(self, epoch: int, loss: float | None = None) -> str:
        """:func:`bar_text` for this run: its variant, ``cfg.epochs`` and the last val MRR."""
        label = self.meta.get("variant", "train")
        return bar_text(label, epoch, self.cfg.epochs, loss, self._last_mrr)

    def _stop_early(self, history: list[dict]) -> bool:
        """Early stopping: ``patience`` epochs after the best val epoch without a better one.

        Decided on rank 0 (which validates) and shared with every rank.
        """
        patience = self.cfg.patience
        stop = False
        if patience and self.dist.main and history:
            scores = [row[f"val_{SELECT_BY}"] for row in history]
            best_at = scores.index(max(scores))  # the first best, as best.pt keeps it
            stop = len(history) - 1 - best_at >= patience
        if self.dist.enabled:
            flag = torch.tensor([float(stop)], device=self.device)
            stop = bool(self.dist.all_sum(flag).item() > 0)
        return stop

    # ---- one epoch --------------------------------------------------------------------------
    def _epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int) -> float:
        model.train()
        batches = self.train_batches(epoch)
        total, units = 0.0, 0.0
        bar = self._bar
        bar.resize(bar.completed + len(batches) * (self.cfg.epochs - epoch))  # epochs left
        bar.describe(self._bar_text(epoch + 1))
        for batch in batches:
            batch = batch.to(self.device, non_blocking=True)
            with autocast(self.device, self.cfg.precision):
                loss_sum, count = model(batch)
            global_count = self.dist.all_sum(count.detach().float()).clamp_min(1.0)
            loss = loss_sum.float() * self.dist.world / global_count
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), self.cfg.grad_clip)
            optimizer.step()
            if self.after_step is not None:  # e.g. the discriminator's update in GAN1/GAN2
                self.after_step(batch, optimizer)
            total += float(loss_sum.detach())
            units += float(count)
            bar.advance()
            bar.describe(self._bar_text(epoch + 1, total / max(units, 1.0)))
        return total / max(units, 1.0)

    def _set_lr(self, optimizer: torch.optim.Optimizer, epoch: int) -> None:
        every = self.cfg.lr_decay_every
        lr = self.cfg.lr * (self.cfg.lr_decay ** (epoch // every) if every else 1.0)
        for group in optimizer.param_groups:
            group["lr"] = lr

    # ---- checkpoints ------------------------------------------------------------------------
    def _save(self, path: Path, model, optimizer, epoch: int, history: list, best) -> None:
        state = {
            "model": model.state_dict(),
            "meta": self.meta,
            "fingerprint": self.fingerprint(),
            "epoch": epoch,
            "history": history,
            "best": best,
        }
        if self._initial is not None:
            state["initial"] = self._initial
        if optimizer is not None:
            state["optimizer"] = optimizer.state_dict()
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    def _resume(self, model, optimizer) -> tuple[int, list, float | None]:
        state_dir, last = self.state_dir, self.state_dir / "last.pt"
        if self.dist.main and self.files.resume_dir.is_dir():  # other settings' state is stale
            for old in self.files.resume_dir.iterdir():
                if old != state_dir:
                    shutil.rmtree(old) if old.is_dir() else old.unlink()
        self.dist.barrier()
        if last.exists():
            state = torch.load(last, map_location=self.device, weights_only=True)
            if state.get("fingerprint") == self.fingerprint():
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                self._initial = state.get("initial")
                return state["epoch"] + 1, list(state["history"]), state["best"]
        self.dist.barrier()
        state_dir.mkdir(parents=True, exist_ok=True)
        return 0, [], None

    def _publish(self, history: list) -> None:
        """Copy best/last weights (without optimizer state) to the DVC output directory.

        With ``export``, each checkpoint is first split into one state per output directory
        (knowledge transfer publishes G and D of one run as two models).
        """
        outputs: dict[Path, dict[str, dict]] = {}
        for name in ("best.pt", "last.pt"):
            state = torch.load(self.state_dir / name, map_location="cpu", weights_only=True)
            state.pop("optimizer", None)
            state.pop("fingerprint", None)  # resume bookkeeping; keeps published files reproducible
            split = self.export(state) if self.export else {self.files.out_dir: state}
            for out_dir, out_state in split.items():
                outputs.setdefault(Path(out_dir), {})[name] = out_state
        for out_dir, states in outputs.items():
            with atomic_path(out_dir, is_dir=True) as tmp:
                for name, state in states.items():
                    torch.save(state, tmp / name)
        rows = self._rows(history)
        plot_curves(rows, self.files.live_dir / "curves.png", title=self.meta.get("variant", ""))

    # ---- the log ----------------------------------------------------------------------------
    def _rows(self, history: list) -> list[dict]:
        """The logged rows, one per epoch, with epoch 0 (the starting weights) when validated."""
        return ([self._initial] if self._initial else []) + history

    def _write_log(self, history: list) -> None:
        """``<live_dir>/metrics.json`` (rank 0): :func:`live_log` of the rows so far."""
        path = self.files.live_dir / LOG
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(live_log(self._rows(history)))


LOG = "metrics.json"  # in RunFiles.live_dir; dvc.yaml declares it a metrics output


def live_log(rows: list[dict]) -> str:
    """The log of ``rows`` (``{"epoch": e, metric: value, …}``) as JSON text: the last value of
    every metric and ``epoch`` (what ``dvc metrics show`` / ``dvc exp show`` list; DVC skips the
    list), then ``history``, one row per epoch with every plotted metric (:func:`plotted`: not
    the counts), ``null`` where an epoch lacks one (epoch 0 has no training loss): DVC's plots
    read a list only when all its rows have the same keys."""
    last: dict = {}
    for row in rows:
        last.update({k: v for k, v in row.items() if k != "epoch"})
    keys = [k for k in dict.fromkeys(k for row in rows for k in row) if plotted(k)]
    history = [{"epoch": row["epoch"], **{k: row.get(k) for k in keys}} for row in rows]
    head = json.dumps({**last, "epoch": rows[-1]["epoch"] if rows else 0}, indent=4)
    lines = ",\n".join(f"        {json.dumps(row)}" for row in history)  # one line per epoch
    body = f"\n{lines}\n    " if history else ""
    return f'{head[:-2]},\n    "history": [{body}]\n}}\n'
