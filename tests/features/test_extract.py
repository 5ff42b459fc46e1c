"""The features stage: VGG-19 pool5 extraction, its robustness, its reader and its CLI.

VGG-19 runs at ~4 images/s at 224x224 on a 2-core CPU: every test uses a handful of images and,
except the 224 contract test, ``image_size: 32`` (pool5 is then 512 x 1 x 1).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torchvision import transforms
from torchvision.models import vgg
from typer.testing import CliRunner

import pipeline.features.backbone as pb
import pipeline.features.extract as pf
from pipeline.atomic import sha256_file
from pipeline.config import FeaturesConfig, Params
from pipeline.data.feature_reader import FeatureReader
from pipeline.errors import InputError
from pipeline.features.backbone import extract_one, load_backbone
from pipeline.features.extract import extract_features
from pipeline.features.images import IMAGENET_MEAN, IMAGENET_STD, load_uint8, normalize
from stages.cli import app
from stages.params import read_yaml
from tests.conftest import REPO

PATTERN = "demo_%012d.png"
TINY = FeaturesConfig(image_size=32, batch_size=8, num_workers=0, device="cpu", seed=3)


# --------------------------------------------------------------------------- helpers


def write_dialogs(path: Path, splits: dict[str, list[int]]) -> Path:
    """A minimal ``image_ids.h5`` (as prepare writes it): only ``/<split>/image_id``."""
    with h5py.File(path, "w") as f:
        for split, ids in splits.items():
            f[f"{split}/image_id"] = np.asarray(ids, dtype=np.int64)
    return path


def write_image(path: Path, seed: int, mode: str = "RGB", size=(40, 52)) -> Path:
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    if mode == "P+transparency":
        img = rgb.convert("P")
        img.info["transparency"] = 0
    elif mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, size, dtype=np.uint16))
    else:
        img = rgb.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **({"transparency": 0} if mode == "P+transparency" else {}))
    return path


@pytest.fixture
def data(tmp_path):
    """``ids`` → (image_ids.h5, image dir) with one random PNG per id, in ``tmp_path``."""

    def make(ids: list[int], split: str = "train") -> tuple[Path, Path]:
        images = tmp_path / "images"
        for i in set(ids):
            write_image(images / (PATTERN % i), seed=i)
        return write_dialogs(tmp_path / "image_ids.h5", {split: ids}), images

    return make


@pytest.fixture
def forwarded(monkeypatch) -> list[int]:
    """Batch sizes that went through the network, in order."""
    sizes: list[int] = []
    launch = pf._launch

    def counting(model, images, device, cfg):
        sizes.append(images.shape[0])
        return launch(model, images, device, cfg)

    monkeypatch.setattr(pf, "_launch", counting)
    return sizes


@pytest.fixture(autouse=True)
def no_cuda_calls(monkeypatch):
    """The CPU path must never touch CUDA (beyond asking whether it exists)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("CUDA API called on the CPU path")

    for name in ("Event", "device_count", "synchronize", "current_device", "set_device"):
        monkeypatch.setattr(torch.cuda, name, forbidden)
    monkeypatch.setattr(torch.Tensor, "pin_memory", forbidden)


def reference(paths: list[Path], state: dict, size: int) -> np.ndarray:
    """Direct torchvision computation: Resize → ToTensor → Normalize → vgg19 features."""
    net = vgg.make_layers(vgg.cfgs["E"]).eval()
    net.load_state_dict(state)
    tf = transforms.Compose(
        [
            transforms.Resize((size, size)),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths])  # (B, 3, S, S)
    with torch.no_grad():
        return net(x).numpy()


def features_of(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f["features"][()]


# --------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "1", "P", "P+transparency", "RGBA", "CMYK"])
def test_every_image_mode_decodes_like_torchvision(tmp_path, mode):
    path = write_image(tmp_path / f"x.{'jpg' if mode == 'CMYK' else 'png'}", 1, mode)
    got = load_uint8(path, 24)
    want = np.asarray(Image.open(path).convert("RGBA").convert("RGB").resize((24, 24), 2))
    assert got.dtype == torch.uint8 and got.shape == (3, 24, 24)
    assert np.array_equal(got.permute(1, 2, 0).numpy(), want)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "g.png"
    Image.fromarray(np.array([[0, 256, 40000, 65535]], dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    got = load_uint8(path, 4)[:, 0, :]  # (3, 4): resize 1→4 rows keeps values
    assert np.array_equal(got[0].numpy(), [0, 1, 156, 255]) and (got[0] == got[2]).all()


def test_normalize_equals_totensor_then_normalize():
    x = torch.randint(0, 256, (2, 3, 5, 5), dtype=torch.uint8)
    want = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)(x.float() / 255)
    torch.testing.assert_close(normalize(x), want)


# --------------------------------------------------------------------------- weights


def test_contract_224_gives_512x7x7_equal_to_torchvision(tmp_path):
    images = tmp_path / "images"
    paths = [write_image(images / (PATTERN % 1), 1, size=(300, 200))]
    paths.append(write_image(images / (PATTERN % 2), 2, "L", size=(180, 240)))
    state = load_backbone("random", seed=7).module.state_dict()
    full = {f"features.{k}": v for k, v in state.items()} | {"classifier.0.bias": torch.zeros(3)}
    torch.save(full, tmp_path / "vgg19_full.pth")  # a whole vgg19 state dict is accepted
    dialogs = write_dialogs(tmp_path / "image_ids.h5", {"train": [1, 2]})
    cfg = FeaturesConfig(
        image_size=224,
        weights=str(tmp_path / "vgg19_full.pth"),
        device="cpu",
        num_workers=0,
        patterns={"train": PATTERN},
    )
    extract_features(dialogs, images, tmp_path / "out", cfg, progress=False)
    got = features_of(tmp_path / "out/train.h5")
    assert got.shape == (2, 512, 7, 7) and got.dtype == np.float16
    want = reference(paths, state, 224)
    assert np.abs(want).max() > 0.1  # not a degenerate all-zero net
    np.testing.assert_allclose(
        got.astype(np.float32), want, rtol=2e-3, atol=2e-3 * np.abs(want).max()
    )
    with h5py.File(tmp_path / "out/train.h5", "r") as f:
        assert f.attrs["weights_sha256"] == sha256_file(tmp_path / "vgg19_full.pth")
        assert f.attrs["image_size"] == 224 and list(f.attrs["normalization_std"]) == list(
            IMAGENET_STD
        )


def test_features_only_state_dict_and_float32(tmp_path, data):
    dialogs, images = data([4, 5])
    state = load_backbone("random", seed=11).module.state_dict()
    torch.save(state, tmp_path / "feat.pth")
    cfg = FeaturesConfig(
        **{**TINY.__dict__, "weights": str(tmp_path / "feat.pth"), "dtype": "float32"}
    )
    extract_features(dialogs, images, tmp_path / "out", cfg, progress=False)
    want = reference([images / (PATTERN % i) for i in (4, 5)], state, 32)
    np.testing.assert_allclose(features_of(tmp_path / "out/train.h5"), want, rtol=1e-5, atol=1e-5)


def test_imagenet_weights_come_from_the_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = pb.imagenet_weights_path()
    assert cached == tmp_path / "torch/hub/checkpoints/vgg19-dcbb9e9d.pth"
    state = load_backbone("random", seed=5).module.state_dict()
    cached.parent.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in state.items()}, cached)
    monkeypatch.setattr(pb, "_download", lambda *a: pytest.fail("must not download"))
    backbone = load_backbone("imagenet")
    assert backbone.weights == "imagenet" and backbone.sha256 == sha256_file(cached)
    torch.testing.assert_close(backbone.module.state_dict()["34.weight"], state["34.weight"])


def test_imagenet_weights_missing_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, dst):
        raise OSError("no network")

    monkeypatch.setattr(pb, "_download", offline)
    with pytest.raises(InputError) as err:
        load_backbone("imagenet")
    message = str(err.value)
    assert "\n" not in message and str(pb.imagenet_weights_path()) in message
    assert pb.IMAGENET_URL in message


def test_bad_weights_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_backbone(str(tmp_path / "nope.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a loadable state dict"):
        load_backbone(str(tmp_path / "junk.pth"))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(InputError, match="not a VGG-19 state dict"):
        load_backbone(str(tmp_path / "other.pth"))


def test_random_weights_are_seeded():
    a, b, c = (load_backbone("random", s).module.state_dict()["0.weight"] for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


# --------------------------------------------------------------------------- the split files


def test_rows_follow_dialogs_order_and_duplicates_run_once(tmp_path, data, forwarded):
    dialogs, images = data([7, 7, 3, 7, 9])
    summary = extract_features(dialogs, images, tmp_path / "out", TINY, progress=False)
    assert sum(forwarded) == 3 and summary["train"] == {"images": 5, "unique": 3, "invalid": 0}
    with h5py.File(tmp_path / "out/train.h5", "r") as f:
        assert list(f["image_id"][()]) == [7, 7, 3, 7, 9] and f["valid"][()].all()
        feats = f["features"][()]
        assert f["features"].chunks == (1, 512, 1, 1)
    assert np.array_equal(feats[0], feats[1]) and np.array_equal(feats[0], feats[3])
    want = reference(
        [images / (PATTERN % i) for i in (7, 3, 9)],
        load_backbone("random", 3).module.state_dict(),
        32,
    )
    np.testing.assert_allclose(feats[[0, 2, 4]].astype(np.float32), want, rtol=2e-3, atol=1e-3)
    assert not (tmp_path / "out.partial").exists()  # cleaned up once complete


def bad_images(images: Path) -> dict[int, str]:
    """Ids 2 (missing), 3 (truncated JPEG as .png name), 4 (not an image) next to good 1, 5."""
    for i in (1, 5):
        write_image(images / (PATTERN % i), i)
    write_image(images / "full.jpg", 3, size=(64, 64))
    data = (images / "full.jpg").read_bytes()
    (images / (PATTERN % 3)).write_bytes(data[: len(data) // 2])
    (images / (PATTERN % 4)).write_bytes(b"\x89PNG but not really")
    return {i: str(images / (PATTERN % i)) for i in (2, 3, 4)}


def test_bad_images_fail_with_the_full_list_and_keep_finished_work(tmp_path, forwarded):
    bad = bad_images(tmp_path / "images")
    dialogs = write_dialogs(tmp_path / "image_ids.h5", {"train": [1, 2, 3, 4, 5]})
    with pytest.raises(InputError) as err:
        extract_features(dialogs, tmp_path / "images", tmp_path / "out", TINY, progress=False)
    message = str(err.value)
    assert "3 unreadable" in message and all(p in message for p in bad.values())
    assert "missing" in message and "\n" not in message
    assert not (tmp_path / "out/train.h5").exists() and sum(forwarded) == 2
    listing = (tmp_path / "out.partial/bad_images.txt").read_text().splitlines()
    assert sorted(line.split(": ")[0] for line in listing) == sorted(bad.values())
    for i in bad:  # the user fixes the files: only those are computed on the rerun
        write_image(Path(bad[i]), i)
    forwarded.clear()
    extract_features(dialogs, tmp_path / "images", tmp_path / "out", TINY, progress=False)
    assert sum(forwarded) == 3
    fixed = features_of(tmp_path / "out/train.h5")
    extract_features(dialogs, tmp_path / "images", tmp_path / "fresh", TINY, progress=False)
    np.testing.assert_allclose(fixed, features_of(tmp_path / "fresh/train.h5"), atol=1e-3, rtol=0)


def test_skip_policy_writes_zeros_and_a_valid_mask(tmp_path, capsys):
    bad_images(tmp_path / "images")
    dialogs = write_dialogs(tmp_path / "image_ids.h5", {"train": [1, 2, 3, 4, 5, 2]})
    cfg = FeaturesConfig(**{**TINY.__dict__, "on_error": "skip"})
    summary = extract_features(dialogs, tmp_path / "images", tmp_path / "out", cfg, progress=False)
    assert summary["train"]["invalid"] == 4
    assert "warning: 3 unreadable image(s)" in capsys.readouterr().err
    with h5py.File(tmp_path / "out/train.h5", "r") as f:
        valid, feats = f["valid"][()], f["features"][()]
    assert list(valid) == [True, False, False, False, True, False]
    assert not feats[~valid].any() and all(feats[i].any() for i in (0, 4))


KILL_AFTER_TWO_BATCHES = """
import json, os, signal, sys
import pipeline.features.extract as pf
from pipeline.config import FeaturesConfig
commit, done = pf._commit_batch, []
def commit_then_die(*args):
    commit(*args)
    done.append(1)
    if len(done) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
pf._commit_batch = commit_then_die
dialogs, images, out, cfg = sys.argv[1:]
pf.extract_features(dialogs, images, out, FeaturesConfig(**json.loads(cfg)), progress=False)
"""


def test_kill_9_then_rerun_finishes_only_the_rest(tmp_path, data, forwarded):
    dialogs, images = data([1, 2, 3, 4])
    cfg = {**TINY.__dict__, "batch_size": 1, "patterns": {"train": PATTERN}}
    args = [dialogs, images, tmp_path / "out", json.dumps(cfg)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_TWO_BATCHES, *map(str, args)], env=env)
    assert proc.returncode == -9
    assert not (tmp_path / "out/train.h5").exists()  # no partial output where outputs go
    tiny1 = FeaturesConfig(**cfg)
    extract_features(dialogs, images, tmp_path / "out", tiny1, progress=False)
    assert forwarded == [1, 1]  # 2 of 4 were done before the kill
    extract_features(dialogs, images, tmp_path / "fresh", tiny1, progress=False)  # same batches
    np.testing.assert_array_equal(
        features_of(tmp_path / "out/train.h5"), features_of(tmp_path / "fresh/train.h5")
    )


def test_changed_settings_do_not_reuse_stale_partial_work(tmp_path, data, forwarded, monkeypatch):
    dialogs, images = data([1, 2, 3])
    commit = pf._commit_batch

    def commit_then_stop(*args):
        commit(*args)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(pf, "_commit_batch", commit_then_stop)
        with pytest.raises(KeyboardInterrupt):
            extract_features(dialogs, images, tmp_path / "out", TINY, progress=False)
    assert not (tmp_path / "out/train.h5").exists()
    forwarded.clear()
    other_seed = FeaturesConfig(**{**TINY.__dict__, "seed": 4})
    extract_features(dialogs, images, tmp_path / "out", other_seed, progress=False)
    assert sum(forwarded) == 3  # the batch done with seed 3 is not reused


def test_config_errors_name_the_key(tmp_path, data):
    dialogs, images = data([1])
    bad = {
        "image_size": (100, "features.image_size"),
        "patterns": ({"train": "no_field.png"}, "features.patterns.train"),
        "device": ("tpu", "features.device"),
    }
    for key, (value, named) in bad.items():
        cfg = FeaturesConfig(**{**TINY.__dict__, key: value})
        with pytest.raises(InputError, match=named.replace(".", r"\.")):
            extract_features(dialogs, images, tmp_path / "out", cfg, progress=False)
    typed = {  # Literal types of pipeline.config: refused when params.yaml is read
        "dtype": ("bfloat16", "features.dtype"),
        "on_error": ("ignore", "features.on_error"),
        "precision": ("fp16", "features.precision"),
    }
    for key, (value, named) in typed.items():
        with pytest.raises(InputError, match=named.replace(".", r"\.")):
            Params.from_mapping({"features": {key: value}})
    no_test = FeaturesConfig(**{**TINY.__dict__, "patterns": {"train": PATTERN}})
    write_dialogs(tmp_path / "d2.h5", {"train": [1], "test": [1]})
    with pytest.raises(InputError, match="split 'test'"):
        extract_features(tmp_path / "d2.h5", images, tmp_path / "out", no_test, progress=False)
    with pytest.raises(InputError, match="no such file"):
        extract_features(tmp_path / "none.h5", images, tmp_path / "out", TINY, progress=False)


def test_torchrun_two_processes_equal_one(tmp_path, data):
    dialogs, images = data([11, 12, 13, 12, 14])
    params = {"features": {**TINY.__dict__, "num_workers": 1}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [torchrun, "--standalone", "--nproc_per_node=2", "-m", "stages.features",
           "--prepared", tmp_path, "--images", images, "--out", tmp_path / "two",
           "--resume", tmp_path / "two.partial"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        list(map(str, cmd)), cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "features train: 5 rows (4 unique" in proc.stdout
        and not (tmp_path / "two.partial").exists()
    )
    extract_features(dialogs, images, tmp_path / "one", TINY, progress=False)
    with (
        h5py.File(tmp_path / "two/train.h5", "r") as two,
        h5py.File(tmp_path / "one/train.h5", "r") as one,
    ):
        assert list(two["image_id"][()]) == [11, 12, 13, 12, 14]
        np.testing.assert_array_equal(two["features"][()], one["features"][()])
        assert two["valid"][()].all()


# --------------------------------------------------------------------------- reader and one image


def test_feature_reader_rows_order_pickling_and_read_only(tmp_path, data):
    dialogs, images = data([21, 22, 23, 22])
    extract_features(dialogs, images, tmp_path / "out", TINY, progress=False)
    path = tmp_path / "out/train.h5"
    path.chmod(0o444)  # DVC links outputs read-only
    everything = features_of(path)
    reader = FeatureReader(path)
    assert len(reader) == 4 and list(reader.image_ids) == [21, 22, 23, 22]
    assert reader.row_of(23) == 2 and reader.row_of(22) == 1
    with pytest.raises(KeyError):
        reader.row_of(99)
    np.testing.assert_array_equal(reader[2], everything[2])
    np.testing.assert_array_equal(reader[[3, 0, 3, 1]], everything[[3, 0, 3, 1]])
    np.testing.assert_array_equal(reader[np.array([-1])], everything[[3]])
    assert reader[[]].shape == (0, 512, 1, 1)
    clone = pickle.loads(pickle.dumps(reader))  # after use: the open handle is not pickled
    np.testing.assert_array_equal(clone[[2, 1]], everything[[2, 1]])
    with FeatureReader(path, in_memory=True) as memory:
        np.testing.assert_array_equal(memory[[1, 0]], everything[[1, 0]])
    with pytest.raises(InputError):
        FeatureReader(tmp_path / "missing.h5")


def test_extract_one_equals_the_stored_row(tmp_path, data):
    dialogs, images = data([31, 32])
    extract_features(dialogs, images, tmp_path / "out", TINY, progress=False)
    model = load_backbone("random", TINY.seed).module
    one = extract_one(images / (PATTERN % 32), model, TINY)
    assert one.shape == (512, 1, 1) and one.dtype == torch.float32
    np.testing.assert_allclose(
        one.numpy(), features_of(tmp_path / "out/train.h5")[1], rtol=2e-3, atol=1e-3
    )
    with pytest.raises(InputError, match="cannot read image"):
        extract_one(tmp_path / "nope.png", model, TINY)


# --------------------------------------------------------------------------- CLI and DVC


def test_cli_options_override_params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "imgs/a/x_000001.png", 1)
    write_dialogs(tmp_path / "prep.h5", {"train": [1]}).rename(tmp_path / "image_ids.h5")
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"features": {"image_size": 32, "num_workers": 0}})
    )
    args = ["features", "--prepared", ".", "--images", "imgs", "--out", "feats", "--resume", "r",
            "--device", "cpu", "--pattern", "train=a/x_%06d.png", "--batch-size", "1",
            "--weights", "random"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "features train: 1 rows" in result.output
    assert FeatureReader(tmp_path / "feats/train.h5").attrs["pattern"] == "a/x_%06d.png"
    for bad_args, message in (
        (["--pattern", "train"], "expected SPLIT=PATTERN"),
        (["--on-error", "maybe"], "features.on_error"),
    ):
        result = CliRunner().invoke(app, args + bad_args)
        assert result.exit_code == 1 and message in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_dvc_stage_deps_and_params():
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["features"]
    assert {"data/prepared/image_ids.h5", "${data.images}"} <= set(stage["deps"])
    assert {"pipeline/features", "stages/features.py"} <= set(stage["deps"])
    known = {f"features.{k}" for k in FeaturesConfig.__dataclass_fields__} | {"data.images"}
    assert set(stage["params"]) <= known and "data.images" in stage["params"]
    assert "${data.images}" in stage["cmd"] and "--out data/features" in stage["cmd"]
    params = read_yaml(REPO / "params.yaml")  # as DVC reads it (YAML 1.2)
    Params.from_mapping(params)  # the features section is valid
    assert set(params["features"]) == set(FeaturesConfig.__dataclass_fields__)
