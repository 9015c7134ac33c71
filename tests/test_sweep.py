"""Sweeps of the demo scenario: results, storage, resume, failures, local pool and CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import biohybrid
from biohybrid.errors import UserError
from biohybrid.sweep import indices, load_sweep, sweep
from biohybrid.sweep.design import design_from_dict
from biohybrid.sweep.execute import TIMING_COLUMNS
from biohybrid.sweep.store import SweepStore

REPO = Path(__file__).resolve().parents[1]


def biohybrid_exe() -> str:
    return str(Path(sys.executable).parent / "biohybrid")


# Tiny, fast runs of the demo model (about 0.1 s each).
TINY = {"t_end": 60.0, "nx": 12, "ny": 12, "seed_radius": 2.0}


def _comparable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


def test_grid_sweep_rows_folders_and_figure(tmp_path):
    seen = []

    def progress(done, total, row):
        # each run's row is on disk as soon as it finishes
        part = tmp_path / "sw" / "results" / f"part-{row['run']:06d}.parquet"
        assert part.exists()
        seen.append((done, total, row["run"]))

    df = biohybrid.sweep(
        "demo",
        {"s_max": [0.1, 1.0]},
        replicates=2,
        seed=7,
        workers=1,
        overrides=TINY,
        out=tmp_path / "sw",
        progress=progress,
    )
    assert [s[2] for s in seen] == [0, 1, 2, 3] and seen[-1][:2] == (4, 4)
    assert df["run"].tolist() == [0, 1, 2, 3]
    assert df["s_max"].tolist() == [0.1, 0.1, 1.0, 1.0]
    assert (df["status"] == "completed").all()
    for col in ("n_cells", "coverage", "mean_response", "activated_fraction", "signal_total"):
        assert col in df and df[col].notna().all()
    seeds = [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(7).spawn(4)]
    assert df["seed"].tolist() == seeds
    root = tmp_path / "sw"
    for _, row in df.iterrows():
        run_dir = root / row["path"]
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["seed"] == row["seed"] and manifest["status"] == "completed"
        assert manifest["scenario"]["params"]["s_max"] == row["s_max"]
        assert manifest["scenario"]["run"]["t_end"] == 60.0
        # the metric is the biomarker's final value in the run's own CSV
        csv = pd.read_csv(run_dir / "biomarkers.csv")
        assert csv["n_cells"].iloc[-1] == row["n_cells"]
    on_disk = pd.read_parquet(root / "results.parquet")
    pd.testing.assert_frame_equal(on_disk, df, check_like=False)
    assert not list((root / "results").iterdir())  # parts consolidated
    meta = json.loads((root / "sweep.json").read_text())
    assert meta["design"]["kind"] == "grid" and meta["design"]["n_runs"] == 4
    assert meta["scenario"]["run"]["t_end"] == 60.0
    assert (root / "figures" / "metrics.png").stat().st_size > 1000
    assert load_sweep(root).equals(df)


def test_replicates_differ_and_rerunning_a_seed_reproduces_it(tmp_path):
    df = sweep("demo", {"s_max": [0.5]}, replicates=3, workers=1, overrides=TINY, out=tmp_path)
    assert df["signal_total"].nunique() == 3  # independent seeds give different runs
    again = biohybrid.run(
        "demo", overrides={**TINY, "s_max": 0.5}, seed=int(df["seed"][1]), write=False
    )
    assert again.biomarkers["signal_total"].iloc[-1] == df["signal_total"][1]


def test_local_pool_matches_in_process_row_for_row(tmp_path):
    kwargs = dict(replicates=3, seed=3, overrides=TINY)
    params = {"s_max": [0.1, 1.0], "k_up": [0.02, 0.08]}
    one = sweep("demo", params, workers=1, out=tmp_path / "one", **kwargs)
    two = sweep("demo", params, workers=2, out=tmp_path / "two", **kwargs)
    assert len(one) == 12
    pd.testing.assert_frame_equal(_comparable(one), _comparable(two))


def test_failed_runs_are_recorded_and_the_sweep_goes_on(tmp_path):
    def metrics(result):
        if result.scenario.params["s_max"] > 0.5:
            raise ValueError("no metric for you")
        return {"final_cells": result.biomarkers["n_cells"].iloc[-1]}

    df = sweep(
        "demo",
        {"s_max": [0.1, 1.0], "dt_output": [30.0, 7.0]},  # dt_output 7 is off the 5-min grid
        workers=2,
        overrides=TINY,
        out=tmp_path,
        metrics=metrics,
    )
    assert len(df) == 4
    by = df.set_index(["s_max", "dt_output"])
    assert by.loc[(0.1, 30.0), "status"] == "completed"
    assert by.loc[(0.1, 30.0), "final_cells"] > 0
    assert by.loc[(1.0, 30.0), "status"] == "failed"
    assert "no metric for you" in by.loc[(1.0, 30.0), "error"]
    for s in (0.1, 1.0):
        assert by.loc[(s, 7.0), "status"] == "failed"
        assert "UserError" in by.loc[(s, 7.0), "error"]
        assert np.isnan(by.loc[(s, 7.0), "final_cells"])
    # retry_failed redoes exactly the failed runs; the completed one is kept
    runs_done = []
    again = sweep(
        "demo",
        {"s_max": [0.1, 1.0], "dt_output": [30.0, 7.0]},
        workers=1,
        overrides=TINY,
        out=tmp_path,
        metrics=metrics,
        retry_failed=True,
        progress=lambda done, total, row: runs_done.append(row["run"]),
    )
    assert sorted(runs_done) == sorted(df.loc[df["status"] == "failed", "run"].tolist())
    assert again.attrs["sweep"]["n_skipped"] == 1


def test_resume_after_kill_redoes_no_finished_run(tmp_path, cli_env):
    out = tmp_path / "sw"
    args = [
        biohybrid_exe(),
        "sweep",
        "demo",
        "--param",
        "s_max=0.1,0.4,0.7,1.0",
        "--replicates",
        "3",
        "--workers",
        "1",
        "--seed",
        "9",
        "--out",
        str(out),
        "--quiet",
        *[f"--set={k}={v}" for k, v in TINY.items()],
    ]
    proc = subprocess.Popen(args, env=cli_env, cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:  # rows in part files or already consolidated into results.parquet
                n_done = len(SweepStore(out).done()) if (out / "sweep.json").exists() else 0
            except (OSError, ValueError):  # a part folded away while listing
                n_done = 0
            if n_done >= 3:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    before = load_sweep(out)
    assert 3 <= len(before) < 12, "the kill should land mid-sweep"
    redone = []
    after = sweep(
        "demo",
        {"s_max": [0.1, 0.4, 0.7, 1.0]},
        replicates=3,
        workers=1,
        seed=9,
        overrides=TINY,
        out=out,
        progress=lambda done, total, row: redone.append(row["run"]),
    )
    assert set(redone).isdisjoint(before["run"])
    assert sorted(redone + before["run"].tolist()) == list(range(12))
    assert after.attrs["sweep"]["n_skipped"] == len(before)
    # rows of finished runs are untouched (same timings: not rerun)
    kept = after[after["run"].isin(before["run"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before.reset_index(drop=True))
    # and a fresh, uninterrupted sweep gives the same results
    fresh = sweep(
        "demo",
        {"s_max": [0.1, 0.4, 0.7, 1.0]},
        replicates=3,
        workers=2,
        seed=9,
        overrides=TINY,
        out=tmp_path / "fresh",
    )
    cols = [c for c in fresh.columns if c not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(after[cols], fresh[cols])


def test_a_different_sweep_in_the_same_folder_is_a_user_error(tmp_path):
    sweep("demo", {"s_max": [0.1]}, workers=1, overrides=TINY, out=tmp_path / "a")
    with pytest.raises(UserError, match=r"different sweep \(design"):
        sweep("demo", {"s_max": [0.2]}, workers=1, overrides=TINY, out=tmp_path / "a")
    with pytest.raises(UserError, match=r"different sweep \(scenario"):
        sweep(
            "demo",
            {"s_max": [0.1]},
            workers=1,
            overrides={**TINY, "t_end": 30.0},
            out=tmp_path / "a",
        )
    # resuming with another worker count is the same sweep
    df = sweep("demo", {"s_max": [0.1]}, workers=2, overrides=TINY, out=tmp_path / "a")
    assert df.attrs["sweep"]["n_skipped"] == 1
    # ... and so is the same sweep typed differently (60 for 60.0, as from the command line)
    typed = {**TINY, "t_end": 60, "nx": 12.0}
    df = sweep("demo", {"s_max": [0.1]}, workers=1, overrides=typed, out=tmp_path / "a")
    assert df.attrs["sweep"]["n_done_now"] == 0
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a sweep folder"):
        sweep("demo", {"s_max": [0.1]}, workers=1, overrides=TINY, out=tmp_path / "b")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"s_max": [-1.0, 0.5]}, "Invalid value -1.0 for parameter 's_max'"),
        ({"smax": [0.5]}, "Did you mean 's_max'"),
    ],
)
def test_bad_values_fail_before_anything_is_written(tmp_path, params, message):
    with pytest.raises(UserError, match=message):
        sweep("demo", params, workers=1, overrides=TINY, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_sobol_sweep_indices_match_the_design_analysis(tmp_path):
    # The metric is an analytic function of the swept parameters, so the indices from the
    # sweep must equal those computed directly on the design (wiring, ordering and the
    # replicate averaging all go through the sweep machinery).
    def metrics(result):
        p = result.scenario.params
        return {"f": np.sin(3 * p["s_max"]) + 2.0 * p["k_up"] ** 2}

    df = sweep(
        "demo",
        {"s_max": (0.0, 1.0), "k_up": (0.0, 1.0)},
        design="sobol",
        n=8,
        replicates=1,
        workers=2,
        overrides={**TINY, "t_end": 30.0},
        out=tmp_path,
        metrics=metrics,
    )
    assert len(df) == 8 * 4
    design = design_from_dict(json.loads((tmp_path / "sweep.json").read_text())["design"])
    x = design.points.to_numpy()
    expected = indices(design, np.sin(3 * x[:, 0]) + 2.0 * x[:, 1] ** 2)
    got = biohybrid.sensitivity(df, "f")
    np.testing.assert_allclose(got[["S1", "ST"]], expected[["S1", "ST"]], rtol=1e-12)
    assert (tmp_path / "figures" / "sensitivity.png").exists()
    saved = pd.read_csv(tmp_path / "sensitivity.csv")
    np.testing.assert_allclose(saved["ST"], got["ST"], rtol=1e-12)


def test_cli_sweep(tmp_path, cli_env):
    out = tmp_path / "cli"
    proc = subprocess.run(
        [
            biohybrid_exe(),
            "sweep",
            "demo",
            "--param",
            "s_max=0.2,0.8",
            "--workers",
            "1",
            "--out",
            str(out),
            *[f"--set={k}={v}" for k, v in TINY.items()],
        ],
        env=cli_env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 runs: 2 run now, 0 already done; 2 completed" in proc.stdout
    assert len(pd.read_parquet(out / "results.parquet")) == 2
    bad = subprocess.run(
        [biohybrid_exe(), "sweep", "demo", "--param", "s_max"],
        env=cli_env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "NAME=v1,v2" in bad.stderr


def test_lhs_and_morris_sweeps_end_to_end(tmp_path):
    lhs = sweep(
        "demo",
        {"s_max": (0.1, 1.0), "nx": (8, 12)},
        design="lhs",
        n=3,
        workers=1,
        overrides={"ny": 8, "t_end": 30.0, "seed_radius": 1.5},
        out=tmp_path / "lhs",
    )
    assert len(lhs) == 3 and (lhs["status"] == "completed").all()
    assert lhs["s_max"].between(0.1, 1.0).all() and lhs["nx"].isin(range(8, 13)).all()
    assert lhs["nx"].dtype.kind == "i"

    def metrics(result):
        p = result.scenario.params
        return {"lin": 3.0 * p["s_max"] - 0.5 * p["k_up"]}

    mor = sweep(
        "demo",
        {"s_max": (0.0, 2.0), "k_up": (0.0, 10.0)},
        design="morris",
        n=2,
        workers=1,
        overrides={**TINY, "t_end": 30.0},
        out=tmp_path / "morris",
        metrics=metrics,
    )
    assert len(mor) == 2 * 3
    table = biohybrid.sensitivity(tmp_path / "morris", "lin")
    # linear response: every elementary effect is a_i (hi_i - lo_i) (Morris 1991)
    np.testing.assert_allclose(table["mu"], [6.0, -5.0], rtol=1e-9)
    np.testing.assert_allclose(table["sigma"], [0.0, 0.0], atol=1e-9)
    assert (tmp_path / "morris" / "figures" / "sensitivity.png").exists()
    with pytest.raises(UserError, match="sobol or morris"):
        biohybrid.sensitivity(lhs)
