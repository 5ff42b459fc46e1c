"""What ``visdial serve`` computes: G-MLE's and G-DIS's answers to one question about one image,
D's score of each, and where each G looked — with no HTTP in sight (``app`` wraps it).

Requests are stateless: the page sends the whole dialog (caption, history, question) each time,
so two visitors never share anything but the models and the feature cache. Each G sees its own
past answers in its history (a history entry's answer may be one string for both or one per
model), in VisDial's window: the caption and the last 9 exchanges, as ``visdial chat``.

Image features are the features stage's (``pipeline.chat.answer.image_regions``); the VGG-19
forward dominates a request, so the regions of each uploaded image are kept by content hash
(``serve.image_cache`` images, least recently used dropped first).
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor, nn

from pipeline.chat.answer import detokenize, image_regions, load_generator, model_path
from pipeline.chat.dialog import LiveDialog, encode_text
from pipeline.config import FeaturesConfig, MaxLen, ModelConfig, ServeConfig, check_features_config
from pipeline.data.visdial import ROUNDS
from pipeline.data.vocab import Vocabulary
from pipeline.errors import InputError
from pipeline.features.backbone import load_backbone
from pipeline.models.checkpoint import load_model
from pipeline.models.decoder import Decoding, generate
from pipeline.models.discriminator import DiscriminativeModel
from pipeline.models.generator import GenerativeModel
from pipeline.runtime import resolve_device

ROLES = ("g-mle", "g-dis")


class BadRequest(InputError):
    """A request the server refuses (HTTP ``status``); the message is one line for the user."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class FeatureCache:
    """Regions (K, 512) of recently seen images by SHA-256 of their bytes; thread-safe LRU."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[str, Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> Tensor | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: Tensor) -> None:
        if self.size == 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def check_image(data: bytes, max_bytes: int) -> None:
    """Refuse an upload that is too large, not an image, a decompression bomb, or corrupt."""
    if not data:
        raise BadRequest("image: the upload is empty", 400)
    if len(data) > max_bytes:
        raise BadRequest(f"image: {len(data) / 2**20:.1f} MB is over serve.max_upload_mb", 413)
    try:
        with Image.open(io.BytesIO(data)) as img:
            pixels = img.width * img.height
            if Image.MAX_IMAGE_PIXELS and pixels > Image.MAX_IMAGE_PIXELS:
                raise BadRequest(
                    f"image: {img.width}x{img.height} is over PIL's decompression-bomb limit"
                    f" of {Image.MAX_IMAGE_PIXELS} pixels", 413,
                )  # fmt: skip
            img.load()  # decode now: a truncated or corrupt file fails here
    except BadRequest:
        raise
    except Image.UnidentifiedImageError:
        raise BadRequest("image: not an image format PIL reads (PNG, JPEG, ...)", 400) from None
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        message = f"image: not a readable image ({type(err).__name__}: {err})"
        raise BadRequest(message, 400) from None


def check_words(text: str, name: str, most: int, *, required: bool) -> str:
    text = text.strip()
    if required and not text:
        raise BadRequest(f"{name}: empty; ask a question about the image")
    if len(text.split()) > most:
        raise BadRequest(f"{name}: {len(text.split())} words, more than {most}")
    return text


def parse_history(raw: list, most_words: int) -> dict[str, list[tuple[str, str]]]:
    """``[[q, a], ...]`` or ``[[q, {"g-mle": a1, "g-dis": a2}], ...]`` -> per role [(q, a)]."""
    if not isinstance(raw, list):
        raise BadRequest("history: expected a JSON list of [question, answer] pairs")
    out: dict[str, list[tuple[str, str]]] = {role: [] for role in ROLES}
    for i, entry in enumerate(raw):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            raise BadRequest(f"history[{i}]: expected [question, answer]")
        question, answer = entry
        check_words(question, f"history[{i}] question", most_words, required=False)
        answers = answer if isinstance(answer, dict) else dict.fromkeys(ROLES, answer)
        for role in ROLES:
            text = answers.get(role)
            if not isinstance(text, str):
                raise BadRequest(f"history[{i}]: the answer of {role} must be a string")
            check_words(text, f"history[{i}] answer", most_words, required=False)
            out[role].append((question, text))
    return out


@dataclass
class Served:
    """The loaded models and what they need; one instance serves every request."""

    gs: dict[str, GenerativeModel]
    names: dict[str, str]  # role -> the checkpoint's variant
    d: DiscriminativeModel | None
    vocab: Vocabulary
    backbone: nn.Module
    features: FeaturesConfig
    max_len: MaxLen
    device: torch.device
    cfg: ServeConfig
    cache: FeatureCache = field(init=False)

    def __post_init__(self):
        self.cache = FeatureCache(self.cfg.image_cache)
        self.decoding = Decoding("greedy", max_len=self.max_len.answer)

    def regions(self, data: bytes) -> Tensor:
        """(K, 512) regions of the image ``data`` (checked), from the cache when seen before."""
        key = hashlib.sha256(data).hexdigest()
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        check_image(data, int(self.cfg.max_upload_mb * 2**20))
        try:
            regions = image_regions(io.BytesIO(data), self.backbone, self.features)  # (K, 512)
        except InputError as err:
            raise BadRequest(f"image: {str(err).split(': ', 1)[-1]}", 400) from None
        regions = regions.to(self.device)
        self.cache.put(key, regions)
        return regions

    @torch.no_grad()
    def answer(self, image: bytes, caption: str, history: list, question: str) -> dict:
        """The ``/api/answer`` response body for one request (see docs/serve.md)."""
        cfg = self.cfg
        question = check_words(question, "question", cfg.max_question_words, required=True)
        caption = check_words(caption, "caption", cfg.max_caption_words, required=False)
        past = parse_history(history, cfg.max_question_words)
        regions = self.regions(image)
        caption_ids, unknown = encode_text(caption, self.vocab, self.max_len.caption)
        q, q_unknown = encode_text(question, self.vocab, self.max_len.question, question=True)
        out: dict = {"answers": {}, "scores": {}, "attention": {}, "models": self.names}
        for role, g in self.gs.items():
            dialog = LiveDialog(regions, caption_ids, self.max_len)
            for past_q, past_a in past[role]:
                dialog.add(
                    encode_text(past_q, self.vocab, self.max_len.question, question=True)[0],
                    encode_text(past_a, self.vocab, self.max_len.answer)[0],
                )
            kept = past[role][max(len(past[role]) - (ROUNDS - 1), 0) :]  # the history window
            batch = dialog.batch(q).to(self.device)
            e, att = g.encode_attended(batch)  # (R, D)
            ids, lengths = generate(g.decoder, e[-1:], self.decoding)  # (1, La), (1,)
            out["answers"][role] = detokenize(self.vocab.decode(ids[0, : int(lengths[0])].tolist()))
            if self.d is not None:
                e_d = self.d.encode(batch)[-1:]  # (1, D): D's view of the same dialog
                score = self.d.answer_encoder.score(e_d, ids[:, : max(int(lengths[0]), 1)],
                                                    lengths.clamp(min=1))  # fmt: skip
                out["scores"][role] = round(float(score[0]), 4)
            if att is not None:
                out["attention"][role] = {
                    "image": [round(w, 5) for w in att.image[0, -1].tolist()],  # (K,)
                    "history": [round(w, 5) for w in att.history[0, -1].tolist()],  # (F,)
                    "facts": [caption, *(f"{a} {b}" for a, b in kept)],  # fact j
                }
        out["unknown_words"] = list(dict.fromkeys(unknown + q_unknown))
        out["history_window"] = ROUNDS - 1
        return out


def load_served(
    cfg: ServeConfig, features: FeaturesConfig, model_cfg: ModelConfig, max_len: MaxLen
) -> Served:
    """Load the vocabulary, both Gs (checked as ``visdial chat`` checks them), D and VGG-19."""
    check_features_config(features)
    vocab_path = Path(cfg.vocab)
    vocab = Vocabulary.load(vocab_path)
    device = resolve_device(cfg.device)
    gs, names = {}, {}
    for role, name in (("g-mle", cfg.g_mle), ("g-dis", cfg.g_dis)):
        path = model_path(name)
        if not path.is_file():
            raise InputError(f"serve.{role.replace('-', '_')}: {path} not found (dvc repro?)")
        g, names[role] = load_generator(path, len(vocab), model_cfg, f"{vocab_path} and params")
        gs[role] = g.to(device).eval()
    d = None
    if cfg.discriminator:
        path = model_path(cfg.discriminator)
        if not path.is_file():
            raise InputError(f"serve.discriminator: {path} not found (dvc repro?)")
        d = load_model(path)
        if not isinstance(d, DiscriminativeModel):
            raise InputError(f"serve.discriminator: {path} is not a discriminative model (D)")
        if d.embedding.num_embeddings != len(vocab):
            raise InputError(
                f"serve.discriminator: {path} was trained on {d.embedding.num_embeddings} words,"
                f" {vocab_path} has {len(vocab)}"
            )
        d = d.to(device).eval()
        names["d"] = cfg.discriminator
    backbone = load_backbone(features.weights, features.seed).module.to(device).eval()
    return Served(gs, names, d, vocab, backbone, features, max_len, device, cfg)
