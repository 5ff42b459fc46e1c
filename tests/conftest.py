"""Shared fixtures: real VisDial v1.0 samples from ../shared, small hand-made VisDial files, and
headless Chromium (skipped where it is not installed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "data" / "visdial_1.0_val_samples"


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.exists():
        pytest.skip(
            f"real VisDial samples not found at {SAMPLES}: these tests need the shared folder "
            "beside the clone (../shared/data/visdial_1.0_val_samples)"
        )
    return SAMPLES


def visdial_doc(
    dialogs: list[tuple[str, list[tuple[str, str]]]],
    version: str = "0.9",
    split: str = "train",
    first_id: int = 100,
) -> dict:
    """A VisDial document from ``[(caption, [(question, answer), ...]), ...]``.

    Options of each round: the ground truth at position ``round % 100`` and the other answers of
    the file (cycled) elsewhere.
    """
    questions = sorted({q for _, rounds in dialogs for q, _ in rounds})
    answers = sorted({a for _, rounds in dialogs for _, a in rounds} | {"filler"})
    q_id = {q: i for i, q in enumerate(questions)}
    a_id = {a: i for i, a in enumerate(answers)}
    out = []
    for n, (caption, rounds) in enumerate(dialogs):
        dialog = []
        for r, (q, a) in enumerate(rounds):
            others = [i for i in range(len(answers)) if i != a_id[a]]
            options = [others[k % len(others)] for k in range(99)]
            options.insert(r, a_id[a])
            dialog.append(
                {"question": q_id[q], "answer": a_id[a], "gt_index": r, "answer_options": options}
            )
        out.append({"image_id": first_id + n, "caption": caption, "dialog": dialog})
    return {
        "version": version,
        "split": split,
        "data": {"questions": questions, "answers": answers, "dialogs": out},
    }


@pytest.fixture
def write_visdial(tmp_path):
    """Write ``visdial_doc(...)`` (or a given dict) to a JSON file and return its path."""

    def write(name: str, doc) -> Path:
        path = tmp_path / name
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    return write


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    """(prepared dir, features dir) of demo dialogs in the paper's three roles, random features:
    8 train and 4 val dialogs (val held out from a 12-dialog train file), 4 test dialogs.

    Image features are seeded noise (no VGG run: fast), in the layout of the features stage
    (``image_id``, ``features (N, 512, 7, 7)`` float16).
    """
    import h5py
    import numpy as np

    from pipeline.config import DemoConfig, MaxLen
    from pipeline.data.prepare import hold_out, prepare
    from pipeline.data.visdial import read_visdial
    from pipeline.demo.generate import generate_demo

    root = tmp_path_factory.mktemp("tiny")
    generate_demo(root / "demo", DemoConfig(train_dialogs=12, val_dialogs=4))
    train, val = hold_out(read_visdial(root / "demo" / "visdial_0.9_train.json"), 4, seed=0)
    test = read_visdial(root / "demo" / "visdial_0.9_val.json")
    files = {"train": train, "val": val, "test": test}
    prepare(files, root / "prepared", min_count=1, max_len=MaxLen())
    rng = np.random.default_rng(0)
    (root / "features").mkdir()
    for split, file in files.items():
        with h5py.File(root / "features" / f"{split}.h5", "w") as h5:
            h5["image_id"] = file.image_id
            h5["features"] = rng.normal(size=(len(file), 512, 7, 7)).astype(np.float16)
    return root / "prepared", root / "features"


# ---- headless Chromium through selenium, offline (../shared/notes/browser.md): both binaries are
# named so that Selenium Manager never tries to download a driver.


INSTALL = "apt-get install -y chromium chromium-driver (as root; .ci/run does it)"


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def browser():
    paths = chromium_paths()
    if paths is None:
        pytest.skip(f"headless Chromium not found: {INSTALL}")
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def not_blank(png: bytes, least: float = 5.0) -> bool:
    """Whether a screenshot shows something: its pixel standard deviation is over ``least``."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return float(pixels.std()) > least
