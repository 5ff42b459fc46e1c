"""The committed demo baseline (dvc.lock, metrics/, report/, live/) matches the code and params.

``dvc metrics diff`` and ``dvc exp show`` compare an experiment against ``main``'s committed
results, so they must be what the committed code and params produce: in a fresh clone
``dvc status`` may only say that cached outputs (and the deps that are those outputs) are
absent — never that a code file, a param or a command changed. When a change moves the demo's
numbers, refresh the baseline: ``bash scripts/demo``, then commit dvc.lock, metrics/, report/,
live/ and checks/ (README, "Comparing variants").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

ABSENT = {"deleted", "not in cache"}


def _outputs(lock: dict) -> set[str]:
    return {out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def _is_output(path: str, outputs: set[str]) -> bool:
    """``path`` is an output, lies inside one, or is a folder of outputs (``models``)."""
    return any(
        path == out or path.startswith(out + "/") or out.startswith(path.rstrip("/") + "/")
        for out in outputs
    )


@pytest.mark.skipif(not (REPO / "dvc.lock").is_file(), reason="no committed dvc.lock")
def test_committed_dvc_lock_matches_the_code_and_params():
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    outputs = _outputs(lock)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["dvc", "status", "--json"], cwd=REPO, env=env, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    stale = []
    for stage, changes in json.loads(proc.stdout or "{}").items():
        for change in changes:
            if not isinstance(change, dict):
                stale.append(f"{stage}: {change}")  # "changed command", "always changed"
                continue
            for kind, paths in change.items():
                for path, state in paths.items():
                    absent = state in ABSENT and (
                        kind == "changed outs" or _is_output(path, outputs)
                    )
                    if not absent:
                        stale.append(f"{stage}: {kind} {path}: {state}")
    assert not stale, "dvc.lock is stale (refresh: bash scripts/demo, commit):\n" + "\n".join(stale)


def test_the_committed_metrics_are_the_lock_s():
    """Every committed metrics file is the version dvc.lock recorded (not a later run's)."""
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    import hashlib

    checked = 0
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            path = REPO / out["path"]
            if path.is_file() and path.suffix == ".json" and "md5" in out:
                assert hashlib.md5(path.read_bytes()).hexdigest() == out["md5"], out["path"]
                checked += 1
    assert checked >= 15  # the evaluate stages' metrics at least
