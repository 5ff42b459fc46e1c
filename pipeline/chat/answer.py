"""Answering questions with a trained G: a live chat about one image, or a whole VisDial file.

This is the paper's point made practical (§1: G, unlike D, can hold a real conversation). The
pieces are the pipeline's own: the checkpoint (``pipeline.checkpoint``, ``weights_only=True``),
the vocabulary and ``prepare.max_len`` (``pipeline.dialog``), and VGG-19 pool5 features with the
``features:`` settings of ``params.yaml`` (``pipeline.features.extract_one``), rounded to the
stored ``features.dtype`` as the training features were. Decoding: greedy, sampling with a
temperature (seeded), or beam search (``pipeline.generator``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from pipeline.chat.dialog import LiveDialog, encode_text, file_arrays, file_batch
from pipeline.config import ChatConfig, FeaturesConfig, MaxLen, ModelConfig, check_features_config
from pipeline.data.batch import DialogBatch
from pipeline.data.visdial import VisDialFile
from pipeline.data.vocab import Vocabulary
from pipeline.errors import InputError
from pipeline.features.backbone import extract_one, load_backbone
from pipeline.models.checkpoint import load_checkpoint, load_model
from pipeline.models.decoder import Decoding, generate
from pipeline.models.generator import GenerativeModel
from pipeline.models.variant import Variant
from pipeline.progress import progress_bar
from pipeline.runtime import resolve_device

ALIASES = {"g-dis": "hciae-g-dis", "g-mle": "hciae-g-mle"}  # the paper's G-DIS and G-MLE
TRANSFERRED = re.compile(r"-(dis|gan1|gan2)$")  # G after transfer: pipeline.training.transfer.MODES


def detokenize(tokens: Sequence[str]) -> str:
    """Tokens -> text, with no space before punctuation: ``yes , it is .`` -> ``yes, it is.``."""
    return re.sub(r" ([,.!?;:])", r"\1", " ".join(tokens))


def is_path(name: str) -> bool:
    """Whether ``--model NAME`` names a checkpoint file rather than a model: ``*.pt``, an
    existing file or a path with a directory."""
    path = Path(name)
    return path.suffix == ".pt" or path.is_file() or len(path.parts) > 1


def model_path(name: str, models_dir: str | Path = "models") -> Path:
    """``g-dis``/``g-mle``/a variant name -> ``models/<variant>/best.pt``; a path stays a path."""
    if is_path(name):
        return Path(name)
    return Path(models_dir) / ALIASES.get(name, name) / "best.pt"


def is_generator(name: str) -> bool:
    """Whether a published model's name is a G: ``<encoder>-g[-mle]`` (pretrained) or
    ``<encoder>-g-{dis,gan1,gan2}`` (knowledge transfer)."""
    try:
        return Variant.parse(TRANSFERRED.sub("", name)).kind == "g"
    except InputError:
        return False


def trained_generators(models_dir: str | Path = "models") -> list[str]:
    """The names ``--model`` takes now: the aliases of trained models, then every G variant
    with a ``<models_dir>/<name>/best.pt``."""
    trained = sorted(p.parent.name for p in Path(models_dir).glob("*/best.pt"))
    names = [name for name in trained if is_generator(name)]
    return [alias for alias, name in ALIASES.items() if name in names] + names


def generator_path(name: str, models_dir: str | Path = "models") -> Path:
    """:func:`model_path`, refusing a model name that has no checkpoint: the one-line error
    lists the G models there are, or says that none is trained yet."""
    path = model_path(name, models_dir)
    if is_path(name) or path.is_file():
        return path
    names = trained_generators(models_dir)
    if not names:
        raise InputError(
            f"model {name!r} not found (no {path}): no G is trained yet under {models_dir}/,"
            " run `dvc repro` first"
        )
    raise InputError(
        f"model {name!r} not found (no {path}): the trained G models are {', '.join(names)}"
        " (or give a checkpoint PATH.pt)"
    )


def load_generator(
    path: Path, vocab_size: int, cfg: ModelConfig, against: str = "the vocabulary and params"
) -> tuple[GenerativeModel, str]:
    """The G of checkpoint ``path`` and its variant name; refuses a D, or weights built for
    another vocabulary or other ``model:`` settings (one line naming the first differing key)."""
    theirs = load_checkpoint(path)["meta"]
    arch = theirs.get("arch", theirs.get("variant", ""))
    if Variant.parse(arch).kind != "g":
        raise InputError(
            f"{path}: {theirs.get('variant')} is a discriminative model (D); answering needs a"
            " generator (G): g-dis, g-mle or another <encoder>-g variant"
        )
    expected = {**theirs, "vocab_size": vocab_size, **dataclasses.asdict(cfg)}
    try:
        return load_model(path, expected), str(theirs.get("variant", arch))
    except InputError as err:
        raise InputError(f"{err} (compared with {against})") from None


def image_regions(path: str | Path, backbone: nn.Module, cfg: FeaturesConfig) -> Tensor:
    """(K, 512) float32 regions of one image, as the features stage stores them (K = 7*7)."""
    feats = extract_one(path, backbone, cfg)  # (512, s, s)
    feats = feats.to(getattr(torch, cfg.dtype)).float()  # the stored precision
    return feats.flatten(1).t().contiguous()  # (K, 512)


@dataclass
class Answerer:
    """Everything needed to answer: G, its vocabulary, the VGG-19 backbone, the settings."""

    model: GenerativeModel
    name: str  # the checkpoint's variant, e.g. hciae-g-dis
    path: Path
    vocab: Vocabulary
    backbone: nn.Module
    features: FeaturesConfig
    max_len: MaxLen
    decoding: Decoding
    device: torch.device

    def rng(self) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(self.decoding.seed)

    def regions(self, paths: Sequence[Path]) -> Tensor:
        """(B, K, 512) regions of the images ``paths``."""
        return torch.stack([image_regions(p, self.backbone, self.features) for p in paths])

    def text(self, ids: Tensor) -> str:
        return detokenize(self.vocab.decode(ids.tolist()))


def load_answerer(
    chat: ChatConfig, features: FeaturesConfig, model_cfg: ModelConfig, max_len: MaxLen
) -> Answerer:
    """Load the vocabulary, G (checked against both) and the backbone, on ``chat.device``."""
    decoding = Decoding(chat.decode, chat.temperature, chat.beam_size, max_len.answer, chat.seed)
    check_features_config(features)
    vocab = Vocabulary.load(chat.vocab)
    path = generator_path(chat.model)
    against = f"{chat.vocab} and params.yaml model:"
    model, name = load_generator(path, len(vocab), model_cfg, against)
    device = resolve_device(chat.device)
    backbone = load_backbone(features.weights, features.seed).module.to(device)
    return Answerer(
        model.to(device), name, path, vocab, backbone, features, max_len, decoding, device
    )


# --------------------------------------------------------------------------- chat


@dataclass
class Reply:
    answer: str
    unknown: list[str]  # words of the question outside the vocabulary (read as <unk>)
    dropped: bool  # the oldest exchanges have left the history window


class Chat:
    """A dialog about one image: each ``ask`` encodes the dialog so far and decodes round t."""

    def __init__(self, answerer: Answerer, image: str | Path, caption: str = ""):
        a = self.answerer = answerer
        ids, self.caption_unknown = encode_text(caption, a.vocab, a.max_len.caption)
        regions = a.regions([Path(image)])[0].to(a.device)  # (K, 512)
        self.dialog = LiveDialog(regions, ids, a.max_len)
        self._rng = a.rng()

    @torch.no_grad()
    def ask(self, question: str) -> Reply:
        a = self.answerer
        q, unknown = encode_text(question, a.vocab, a.max_len.question, question=True)
        dropped = self.dialog.sliding
        batch = self.dialog.batch(q).to(a.device)
        e = a.model.encode(batch)[-1:]  # (1, D): the last round, the question asked
        ids, lengths = generate(a.model.decoder, e, a.decoding, self._rng)
        answer = ids[0, : int(lengths[0])]
        self.dialog.add(q, answer.tolist())
        return Reply(a.text(answer), unknown, dropped)


# --------------------------------------------------------------------------- VisDial files


@torch.no_grad()
def answer_rounds(
    model: GenerativeModel, batch: DialogBatch, decoding: Decoding, rng: torch.Generator
) -> tuple[Tensor, Tensor]:
    """G's answer to every asked round of ``batch``: ids (B, R, La), lengths (B, R).

    The history holds the human answers where the batch has them; an asked round without one
    puts G's own answer into the history of later rounds, as in a chat. All rounds are decoded
    at once, so a VisDial file (only the last round may lack its answer: v1.0 test) takes one
    pass; a dialog with k unanswered rounds before its last takes k + 1.
    """
    b, r, la = batch.answer.shape
    asked = batch.round_mask & (batch.question_len > 0)  # (B, R)
    unfilled = asked & (batch.answer_len == 0)  # history answers G still has to supply
    done = ~asked
    ids = batch.answer.new_zeros(b, r, la)  # (B, R, La)
    lengths = batch.answer_len.new_zeros(b, r)  # (B, R)
    while not bool(done.all()):
        before = unfilled.long().cumsum(1) - unfilled.long()  # unfilled rounds earlier (B, R)
        todo = ~done & (before == 0)  # rounds whose whole history is known
        e = model.encode(batch)  # (B*R, D)
        out, out_len = generate(
            model.decoder, e[todo.flatten()], decoding, rng
        )  # (M, max_len), (M,)
        out = nn.functional.pad(out, (0, la - out.shape[1]))  # (M, La)
        ids[todo], lengths[todo] = out, out_len.clamp(max=la)
        fill = todo & unfilled
        answer, answer_len = batch.answer.clone(), batch.answer_len.clone()
        answer[fill], answer_len[fill] = ids[fill], lengths[fill]
        batch = dataclasses.replace(batch, answer=answer, answer_len=answer_len)
        unfilled, done = unfilled & ~fill, done | todo
    return ids, lengths


def image_paths(file: VisDialFile, image_dir: Path, pattern: str) -> list[Path]:
    """One image per dialog; every missing file is an error (the first few are named)."""
    try:
        paths = [image_dir / (pattern % int(i)) for i in file.image_id]
    except (TypeError, ValueError):
        raise InputError(f"--pattern {pattern!r}: expected one printf field, e.g. %012d") from None
    missing = [p for p in dict.fromkeys(paths) if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:3])
        raise InputError(
            f"{len(missing)} image(s) of {file.path} not found with pattern {pattern!r}: {shown}"
            f"{' …' if len(missing) > 3 else ''}"
        )
    return paths


def answer_file(
    answerer: Answerer,
    file: VisDialFile,
    image_dir: str | Path,
    pattern: str,
    batch_size: int = 32,
    progress: bool = True,
) -> list[dict]:
    """``[{"image_id", "round_id" (1-based), "question", "answer"}]`` for every asked round of
    ``file``, in file order; ``question`` is the file's text, ``answer`` G's."""
    if batch_size < 1:
        raise InputError(f"chat.batch_size: {batch_size}: must be >= 1")
    a = answerer
    paths = image_paths(file, Path(image_dir), pattern)
    arrays = file_arrays(file, a.vocab, a.max_len)
    rng, out = a.rng(), []
    with progress_bar(len(file), "answer", "dialog", enabled=progress) as advance:
        for start in range(0, len(file), batch_size):
            rows = np.arange(start, min(start + batch_size, len(file)))
            image = a.regions([paths[i] for i in rows])  # (B, K, 512)
            batch = file_batch(arrays, rows, image).to(a.device)
            ids, lengths = answer_rounds(a.model, batch, a.decoding, rng)  # (B, R, La), (B, R)
            for b, row in enumerate(rows):
                for r in range(int(file.num_rounds[row])):
                    out.append({
                        "image_id": int(file.image_id[row]),
                        "round_id": r + 1,
                        "question": file.questions[file.question[row, r]],
                        "answer": a.text(ids[b, r, : int(lengths[b, r])]),
                    })  # fmt: skip
            advance(len(rows))
    return out
