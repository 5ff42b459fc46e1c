"""End to end: ``dvc repro`` in a temporary git repo on the tiny params profile."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
import yaml

from stages.params import read_yaml
from tests.conftest import REPO
from tests.imports import closure

pytestmark = pytest.mark.slow
# the committed demo results (tests/test_baseline.py) are not part of a fresh tiny run
BASELINE = ("data/", "metrics/", "live/", "report/", "checks/", "dvc.lock")
INPUTS = ("report/seeds.json",)  # in report/ but read by the report stage, not written by it


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def merge(base: dict, overrides: dict) -> None:
    """Deep-merge ``overrides`` into ``base`` (the tiny profile onto params.yaml)."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A copy of the project's tracked (and not ignored) files as a fresh git repo."""
    dest = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True
    ).stdout.split()
    for rel in listed:
        if (REPO / rel).is_file() and (not rel.startswith(BASELINE) or rel in INPUTS):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    params = read_yaml(REPO / "params.yaml")
    merge(params, read_yaml(REPO / "tests" / "params.tiny.yaml"))
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], dest)
    _run(["git", "add", "-A"], dest)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], dest)
    _run(["dvc", "repro"], dest)
    return dest


def test_repro_produces_the_prepared_data(repo):
    with h5py.File(repo / "data/prepared/dialogs.h5", "r") as h5:
        sizes = {role: len(h5[f"{role}/image_id"]) for role in h5}
    assert sizes == {"train": 14, "val": 6, "test": 6}  # val: whole images held out of train
    assert (repo / "data/prepared/vocab.json").exists()


def test_second_repro_does_nothing(repo):
    out = _run(["dvc", "repro"], repo)
    assert "Running stage" not in out
    assert "didn't change" in out or "up to date" in out


def _stale(repo: Path) -> set[str]:
    """The stages ``dvc status`` says changed (``foreach`` items by their template name)."""
    out = json.loads(_run(["dvc", "status", "--json"], repo))
    return {name.split("@")[0].split(":")[-1] for name in out}


def test_a_code_change_marks_exactly_the_stages_that_import_it(repo):
    """Appending a comment to a module makes exactly the stages whose command runs it stale."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    modules = {name: (s.get("do", s))["cmd"].split()[2] for name, s in stages.items()}
    active = {
        "check_params",
        "demo_data",
        "prepare",
        "features",
        "train_g",
        "train_d",
        "transfer",
        "evaluate",
        "compare",
        "report",
        "gallery",
        "publish",
    }  # no GAN stages
    touched = (
        "pipeline/data/prepare.py", "pipeline/models/decoder.py", "pipeline/features/backbone.py",
        "pipeline/evaluation/report.py", "pipeline/training/loop.py", "pipeline/config.py",
        "stages/pretrain.py", "pipeline/evaluation/compare.py",
    )  # fmt: skip
    for rel in touched:
        path = repo / rel
        original = path.read_text()
        path.write_text(original + "# touched\n")
        try:
            want = {n for n, m in modules.items() if REPO / rel in closure(m)} & active
            assert _stale(repo) == want, rel
        finally:
            path.write_text(original)
    assert not _stale(repo)


def test_going_back_to_earlier_params_restores_from_the_run_cache(repo):
    """alpha A -> B -> A: the last run restores every stage that alpha reaches from DVC's
    run-cache, the report and the gallery too, with the first run's pages; only the checks and
    the copy of the pages for git (publish) run."""
    alpha = read_yaml(repo / "params.yaml")["transfer"]["alpha"]
    pages = {p: (repo / p).read_bytes() for p in ("report/README.md", "report/gallery.html")}
    _run(["dvc", "exp", "run", "-S", f"transfer.alpha={alpha + 0.2:g}"], repo)
    assert (repo / "report/README.md").read_bytes() != pages["report/README.md"]
    out = _run(["dvc", "exp", "run", "-S", f"transfer.alpha={alpha:g}"], repo)
    # DVC 3.x words a run-cache hit "Stage 'X' is cached - skipping run, checking out outputs"
    # (older releases: "Restored stage 'X' from run-cache").
    restored = set(re.findall(r"Stage '([^']+)' is cached", out))
    restored |= set(re.findall(r"Restored stage '([^']+)'", out))
    # their deps went back to the first run's: the run-cache (compare may also "didn't change",
    # when the other alpha left the ranks as they were)
    assert {"transfer", "evaluate@hciae-g-dis", "report", "gallery"} <= restored, out
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert ran <= {"check_params", "publish"}, out  # check_params: 1 s; publish: a copy
    assert {p: (repo / p).read_bytes() for p in pages} == pages
    assert not _stale(repo)


def test_min_count_change_reruns_prepare_but_not_features(repo):
    """A new vocabulary reruns prepare; the image ids are the same, so features are kept.
    (Reproducing only up to features keeps this test from retraining every model; putting the
    old value back restores prepare from the run-cache.)"""
    before = (repo / "params.yaml").read_text()
    params = read_yaml(repo / "params.yaml")
    params["prepare"]["min_count"] = 4
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    try:
        out = _run(["dvc", "repro", "features"], repo)
    finally:
        (repo / "params.yaml").write_text(before)
    assert "Running stage 'prepare'" in out
    assert "Running stage 'demo_data" not in out
    assert "Running stage 'features'" not in out  # same image ids: features are kept
    out = _run(["dvc", "repro", "features"], repo)
    assert "Stage 'prepare' is cached" in out or "Restored stage 'prepare'" in out, out
    assert not _stale(repo)


def test_results_are_consistent_and_the_report_shows_them(repo):
    """Every metrics file obeys the metrics' own arithmetic and is what the report prints."""
    stats = json.loads((repo / "data/prepared/stats.json").read_text())
    report = (repo / "report/README.md").read_text()
    comparisons = json.loads((repo / "report/comparisons.json").read_text())
    for path in sorted((repo / "metrics").glob("*.json")):
        m = json.loads(path.read_text())
        r1, r5, r10, mrr = m["r@1"], m["r@5"], m["r@10"], m["mrr"]
        assert 0 <= r1 <= r5 <= r10 <= 1, path.name
        # per round 1/rank <= 1, 1/2, 1/6, 1/11 for ranks 1, 2-5, 6-10, > 10
        assert r1 <= mrr <= r1 + (r5 - r1) / 2 + (r10 - r5) / 6 + (1 - r10) / 11 + 1e-12
        assert 1 <= m["mean_rank"] <= 100
        assert m["count"] == stats["rounds"]["test"]  # every scored test round, nothing else
        rounds = (repo / "predictions" / f"{path.stem}_test_rounds.csv").read_text().splitlines()
        assert len(rounds) - 1 == m["count"]
        row = f"| {path.stem} | {mrr:.4f} | {100 * r1:.2f} | {100 * r5:.2f} | {100 * r10:.2f} |"
        assert row in report, row
    mle = json.loads((repo / "metrics/hciae-g-mle.json").read_text())
    dis = json.loads((repo / "metrics/hciae-g-dis.json").read_text())
    pair = comparisons["hciae-g-dis_vs_hciae-g-mle"]["mrr"]
    assert pair["delta"] == pytest.approx(dis["mrr"] - mle["mrr"], abs=1e-12)
    assert pair["ci_low"] <= pair["delta"] <= pair["ci_high"]
    assert f"{100 * (dis['r@5'] - mle['r@5']):+.2f} points" in report
    used = json.loads((repo / "report/image_use.json").read_text())
    assert set(used) == {p.stem for p in (repo / "metrics").glob("*.json")}
    assert used["hciae-g-mle"]["mrr"] == pytest.approx(mle["mrr"], abs=1e-12)
    assert used["hciae-g-mle"]["mrr_shuffled"] == pytest.approx(mle["mrr_shuffled_images"])
    assert "## Do the models look at the image?" in report
    lines = report.splitlines()
    assert "(gallery.html)" in lines[2] and lines[4] == "## Claims of the paper on this data"


def test_gallery_and_plots_render_offline_in_chromium(repo, browser, tmp_path):
    """report/gallery.html and `dvc plots show`'s page load nothing from the network and show
    images, attention grids and charts (a screenshot of each is checked for content)."""
    from tests.conftest import not_blank

    gallery = repo / "report" / "gallery.html"
    html = gallery.read_text()
    assert "<script" not in html and "src='http" not in html and 'src="http' not in html
    browser.get(gallery.as_uri())
    sizes = browser.execute_script(
        "return [...document.images].map(i => i.complete ? i.naturalWidth : 0)"
    )
    samples = read_yaml(repo / "params.yaml")["report"]["samples"]
    assert len(sizes) == samples and all(w > 0 for w in sizes), sizes
    cells = browser.execute_script("return document.querySelectorAll('.att .grid i').length")
    assert cells > 0 and cells % 49 == 0
    assert not_blank(browser.get_screenshot_as_png())
    browser.save_screenshot(str(tmp_path / "gallery.png"))

    _run([sys.executable, "-m", "stages.plots_page"], repo)  # what scripts/setup does
    _run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], repo)
    page = tmp_path / "plots" / "index.html"
    assert "cdn.jsdelivr" not in page.read_text()
    browser.get(page.as_uri())
    # the variant comparisons (dvc.yaml's top-level plots), drawn: their titles are SVG text
    titles = {k for item in yaml.safe_load((repo / "dvc.yaml").read_text())["plots"] for k in item}
    script = ("return [...document.querySelectorAll('.vega-embed svg .role-title-text')]"
              ".map(t => t.textContent)")  # fmt: skip
    deadline = time.monotonic() + 30
    while len(browser.execute_script(script)) < len(titles) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(browser.execute_script(script)) == titles, "Vega did not draw the comparisons"
    assert not_blank(browser.get_screenshot_as_png())
    browser.save_screenshot(str(tmp_path / "plots.png"))


def test_a_params_typo_fails_first_and_deletes_no_output(repo):
    """A key beside the right one (train_g.epoch) fails in check_params, before DVC removes the
    outputs of the stages that would rerun; fixed, nothing downstream reruns."""
    original = (repo / "params.yaml").read_text()
    params = read_yaml(repo / "params.yaml")
    params["train_g"]["epoch"] = 3
    params["train_g"]["epochs"] = 2  # a real change too: train_g would rerun
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True)
    try:
        assert proc.returncode != 0
        assert "unknown key 'train_g.epoch'" in proc.stdout + proc.stderr
        assert "Running stage 'train_g" not in proc.stdout
        assert (repo / "models/hciae-g-mle/best.pt").is_file()  # not deleted
    finally:
        (repo / "params.yaml").write_text(original)
    out = _run(["dvc", "repro"], repo)
    assert "Running stage 'check_params'" in out and "Running stage 'train_g" not in out
