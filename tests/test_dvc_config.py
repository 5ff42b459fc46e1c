"""What the committed ``.dvc/`` and ``dvc.yaml`` settings do in a fresh clone: the cache cannot
be corrupted through the workspace, ``dvc plots show`` works without ``scripts/setup``, and its
page overlays the variants (one chart per comparison, no chart per metric)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.training.loop import live_log
from tests.conftest import REPO


def dvc(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert not check or proc.returncode == 0, f"dvc {args}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def git(args: list[str], cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                   check=True, capture_output=True)  # fmt: skip


def clone(dest: Path) -> Path:
    """The tracked files of the working tree as a fresh git repo: a clone that ran no
    ``scripts/setup`` (no .dvc/config.local, no offline page, no DVC cache)."""
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.splitlines()  # fmt: skip
    for rel in listed:
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    git(["init", "-q"], dest)
    git(["add", "-A"], dest)
    git(["commit", "-qm", "clone"], dest)
    return dest


# ---- the cache ----------------------------------------------------------------------------
def test_the_cache_type_cannot_write_through_the_workspace():
    """hardlink and symlink make a workspace output the cache object itself (opt-in only)."""
    config = (REPO / ".dvc" / "config").read_text()
    assert "hardlink" not in config and "symlink" not in config


def test_overwriting_a_tracked_output_leaves_the_cache_intact(tmp_path):
    """`cp bad.png <output>` (as root, past the read-only bit DVC sets on links) must change
    the workspace only: the cache keeps the stage's output and `dvc status` names the change."""
    git(["init", "-q"], tmp_path)
    dvc(["init", "-q"], tmp_path)
    shutil.copy(REPO / ".dvc" / "config", tmp_path / ".dvc" / "config")  # the project's cache.type
    (tmp_path / "in.txt").write_text("good\n")
    stage = {"cmd": "python -c \"import shutil; shutil.copy('in.txt', 'out.txt')\"",
             "deps": ["in.txt"], "outs": ["out.txt"]}  # fmt: skip
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"copy": stage}}))
    dvc(["repro", "-q"], tmp_path)
    md5 = yaml.safe_load((tmp_path / "dvc.lock").read_text())["stages"]["copy"]["outs"][0]["md5"]
    cached = tmp_path / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    assert cached.read_text() == "good\n"

    out = tmp_path / "out.txt"
    out.chmod(0o644)  # what root's cp gets past
    out.write_text("bad\n")  # writes into the cache object if out.txt is a link to it

    assert cached.read_text() == "good\n"
    status = json.loads(dvc(["status", "--json"], tmp_path).stdout)
    assert status == {"copy": [{"changed outs": {"out.txt": "modified"}}]}, status
    dvc(["checkout", "-f", "out.txt"], tmp_path)
    assert out.read_text() == "good\n"


# ---- dvc plots show -----------------------------------------------------------------------
def test_plots_show_works_in_a_clone_that_skipped_setup(tmp_path):
    """Without the offline page (and its .dvc/config.local entry) DVC uses its default page,
    which loads Vega from a CDN: no error, the page is written."""
    repo = clone(tmp_path / "clone")
    assert not (repo / ".dvc" / "offline-plots.html").exists()
    assert not (repo / ".dvc" / "config.local").exists()
    proc = dvc(["plots", "show", "-o", str(tmp_path / "plots")], repo)
    assert "ERROR" not in proc.stderr and "template" not in proc.stderr, proc.stderr
    page = (tmp_path / "plots" / "index.html").read_text()
    assert "cdn.jsdelivr" in page and "vegaEmbed" in page


def test_plots_page_writes_the_page_and_names_it_in_config_local(tmp_path, monkeypatch):
    """What scripts/setup runs: the page, and plots.html_template in the gitignored
    config.local (relative to .dvc/, so that it moves with the clone)."""
    pytest.importorskip("vl_convert")
    from stages.plots_page import main

    git(["init", "-q"], tmp_path)
    dvc(["init", "-q"], tmp_path)
    monkeypatch.chdir(tmp_path)
    main(out=Path(".dvc/offline-plots.html"), register_page=True)
    assert "{plot_divs}" in (tmp_path / ".dvc" / "offline-plots.html").read_text()
    assert dvc(["config", "plots.html_template"], tmp_path).stdout.strip() == "offline-plots.html"
    assert "html_template" in (tmp_path / ".dvc" / "config.local").read_text()
    assert "/config.local" in (tmp_path / ".dvc" / ".gitignore").read_text().split()


def top_level_plots() -> dict[str, dict]:
    """dvc.yaml's top-level plots: {title: definition}."""
    return {k: v for item in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
            for k, v in item.items()}  # fmt: skip


def synthetic_logs(repo: Path) -> dict[str, set[str]]:
    """A live/<V>/metrics.json for every variant the plots name, as the training loop writes it
    (epoch 0 of the transfers has no training loss); returns {title: variants}."""
    wanted = {}
    for title, plot in top_level_plots().items():
        wanted[title] = {Path(path).parent.name for path in plot["y"]}
        for path, field in plot["y"].items():
            log = repo / path
            rows = json.loads(log.read_text())["history"] if log.is_file() else []
            first = 0 if "-g-" in path and "mle" not in path else 1
            rows = rows or [{"epoch": e, "val_count": 40} for e in range(first, 4)]
            for row in rows:
                row[field] = None if field.startswith("train") and row["epoch"] == 0 else 0.1
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(live_log(rows))
            png(log.parent / "curves.png")
    for name in ("metrics", "diversity", "gallery"):
        png(repo / "report" / f"{name}.png")
    return wanted


def png(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(path)


@pytest.fixture
def plots_repo(tmp_path) -> tuple[Path, dict[str, set[str]]]:
    """dvc.yaml, params.yaml, .dvc/ of the project and synthetic logs, nothing else."""
    git(["init", "-q"], tmp_path)
    dvc(["init", "-q"], tmp_path)
    for rel in ("dvc.yaml", "params.yaml", ".dvc/config", ".dvc/plots"):
        copy = shutil.copytree if (REPO / rel).is_dir() else shutil.copy
        copy(REPO / rel, tmp_path / rel)
    return tmp_path, synthetic_logs(tmp_path)


def test_plots_overlay_the_variants_one_chart_per_comparison(plots_repo):
    repo, wanted = plots_repo
    shown = json.loads(dvc(["plots", "show", "--json"], repo).stdout)
    assert not shown.get("errors"), shown["errors"]
    vega = {k for k, v in shown["data"].items() if v and v[0]["type"] == "vega"}
    assert vega == set(wanted)  # the comparisons and nothing else: no chart per metric file
    for title, variants in wanted.items():
        assert not set("'\"") & set(title), f"{title}: DVC puts the title in a JS string"
        rows = shown["data"][title][0]["content"]["data"]["values"]
        assert {Path(r["filename"]).parent.name for r in rows} == variants, title
    images = {k for k, v in shown["data"].items() if v and v[0]["type"] == "image"}
    assert {k for k in images if k.startswith("live/")} == {
        f"live/{v}/curves.png" for v in set().union(*wanted.values())
    }  # each model's own curves, once


def test_comparison_charts_render_offline_with_their_titles(
    plots_repo, browser, tmp_path, monkeypatch
):
    pytest.importorskip("vl_convert")
    from stages.plots_page import main
    from tests.conftest import not_blank

    repo, wanted = plots_repo
    monkeypatch.chdir(repo)
    main(out=Path(".dvc/offline-plots.html"), register_page=True)  # what scripts/setup does
    dvc(["plots", "show", "-o", str(tmp_path / "plots")], repo)
    page = tmp_path / "plots" / "index.html"
    assert "cdn.jsdelivr" not in page.read_text()
    browser.get(page.as_uri())
    script = ("return [...document.querySelectorAll('.vega-embed svg .role-title-text')]"
              ".map(t => t.textContent)")  # fmt: skip
    deadline = time.monotonic() + 30
    while len(browser.execute_script(script)) < len(wanted) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(browser.execute_script(script)) == set(wanted)
    assert not_blank(browser.get_screenshot_as_png())
