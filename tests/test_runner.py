"""Runs write complete, reproducible, atomic run folders, and say how they ended."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import biohybrid
from biohybrid.errors import UserError
from biohybrid.models.demo import DemoModel


def test_run_folder_contents(tmp_path: Path, fast_demo: dict) -> None:
    res = biohybrid.run("demo", overrides=fast_demo, seed=1, out=tmp_path / "r")
    assert res.status == "completed" and res.ok
    assert res.path == tmp_path / "r"
    df = pd.read_csv(res.path / "biomarkers.csv")
    assert list(df.columns) == ["time", *res.biomarkers.columns]
    np.testing.assert_allclose(df["time"], np.arange(0, 181, 30.0))
    assert res.biomarkers.index.name == "time"
    man = json.loads((res.path / "manifest.json").read_text())
    assert man["status"] == "completed"
    assert man["seed"] == 1
    assert man["scenario"]["run"]["t_end"] == 180.0
    assert man["scenario"]["params"]["seed_radius"] == 3.0
    assert man["biomarker_units"]["signal_total"] == "µM·µm²"
    assert {"mesa", "fipy", "numpy", "python"} <= set(man["versions"])
    assert man["started"] and man["ended"]
    assert (res.path / "figures" / "biomarkers.png").stat().st_size > 1000
    assert res.counters["ticks"] == 36
    assert not list(res.path.glob(".*.tmp"))


def test_same_seed_gives_identical_bytes(tmp_path: Path, fast_demo: dict) -> None:
    a = biohybrid.run("demo", overrides=fast_demo, seed=11, out=tmp_path / "a", figures=False)
    b = biohybrid.run("demo", overrides=fast_demo, seed=11, out=tmp_path / "b", figures=False)
    c = biohybrid.run("demo", overrides=fast_demo, seed=12, out=tmp_path / "c", figures=False)
    data = [(r.path / "biomarkers.csv").read_bytes() for r in (a, b, c)]
    assert data[0] == data[1]
    assert data[0] != data[2]


def test_interrupted_run_keeps_rows_and_says_so(tmp_path: Path, fast_demo: dict) -> None:
    def stop(tick: int, total: int) -> None:
        if tick == 13:
            raise KeyboardInterrupt

    res = biohybrid.run("demo", overrides=fast_demo, out=tmp_path / "r", progress=stop)
    assert res.status == "interrupted"
    man = json.loads((res.path / "manifest.json").read_text())
    assert man["status"] == "interrupted" and "interrupted" in man["message"]
    df = pd.read_csv(res.path / "biomarkers.csv")
    np.testing.assert_allclose(df["time"], [0.0, 30.0, 60.0])  # rows up to t = 65 min


def test_diverging_run_is_failed_with_reason(
    tmp_path: Path, fast_demo: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    def poisoned(self: DemoModel, cells: object, rows: np.ndarray) -> dict:
        p = dict(self.params)
        if self.t >= 60.0:
            p["k_act"] = np.nan
        return p

    monkeypatch.setattr(DemoModel, "cell_params", poisoned)
    res = biohybrid.run("demo", overrides=fast_demo, out=tmp_path / "r")
    assert res.status == "failed"
    man = json.loads((res.path / "manifest.json").read_text())
    assert man["status"] == "failed"
    assert "at t = 60" in man["message"]  # says when it failed
    df = pd.read_csv(res.path / "biomarkers.csv")
    assert df["time"].max() == 60.0  # everything before the failure is kept


def test_user_error_leaves_no_run_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        biohybrid.run("demo", overrides={"diffusion": -1.0}, out=tmp_path / "r")
    with pytest.raises(UserError):
        biohybrid.run("demo", overrides={"dt_ode": 0.7}, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_existing_nonempty_out_is_refused(tmp_path: Path, fast_demo: dict) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        biohybrid.run("demo", overrides=fast_demo, out=tmp_path / "r")


def test_default_run_dir_under_outputs(
    tmp_path: Path, fast_demo: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r1 = biohybrid.run("demo", overrides=fast_demo, seed=2, figures=False)
    r2 = biohybrid.run("demo", overrides=fast_demo, seed=2, figures=False)
    for r in (r1, r2):
        assert r.path.parent == tmp_path / "outputs" / "demo"
        assert r.path.name.endswith("-s2") or "-s2-" in r.path.name
    assert r1.path != r2.path
