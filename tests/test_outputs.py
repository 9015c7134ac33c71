"""Run outputs: per-cell Parquet, fields in Zarr, ParaView files, load_run (issue 14).

Every check compares what was written with the model's own state read through a different
path than the writer's: Mesa's agent set and each agent's grid coordinate (positions
recomputed here as ``(coordinate + 1/2) · spacing``), the tissue's per-site values, and the
geometry of the VTK cells recomputed from their corner points.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import meshio
import numpy as np
import pandas as pd
import pytest

import biohybrid
from biohybrid import UserError, load_run
from biohybrid.results import OutputObserver
from biohybrid.scenario import load_scenario

#: Small runs: 1-D and 2-D demo (divisions, one population, one field), 3-D paracrine
#: (two populations with different species, one field).
CASES = {
    "1d": ("demo", {"t_end": 180.0, "shape": [30], "seed_radius": 3.0}),
    "2d": ("demo", {"t_end": 180.0, "nx": 12, "ny": 10, "seed_radius": 3.0}),
    "3d": ("paracrine", {"t_end": 60.0, "shape": [6, 6, 4]}),
}


def build(case: str, **run: float):
    name, overrides = CASES[case]
    sc = load_scenario(name, {**overrides, **run})
    return sc.model_class(params=sc.params, run=sc.run, seed=sc.seed)


def run_observed(model, out: Path, steps: int | None = None) -> OutputObserver:
    """Step ``model`` (all the way, or ``steps`` times) with an OutputObserver."""
    obs = OutputObserver(model, out)
    n = 0
    while model.running and model.tick < model.schedule.n_ticks:
        model.step()
        obs.observe(model)
        n += 1
        if steps is not None and n >= steps:
            break
    return obs


def agents_now(model) -> pd.DataFrame:
    """The live cells from Mesa's agent set, independent of the writer's row walk."""
    spacing = np.asarray(model.lattice.spacing)
    rows = []
    for agent in model.agents:
        cells = model.cells[agent.population]
        pos = (np.asarray(agent.cell.coordinate, dtype=float) + 0.5) * spacing
        rec = {"cell_id": agent.unique_id, "population": agent.population, "kind": agent.kind}
        rec.update({f"{'xyz'[a]}_um": pos[a] for a in range(model.lattice.ndim)})
        rec.update(dict(zip(cells.system.species, cells.table.row(agent.row), strict=True)))
        rows.append(rec)
    return pd.DataFrame(rows).sort_values("cell_id").reset_index(drop=True)


@pytest.mark.parametrize("case", ["1d", "3d"])
def test_cells_table_equals_model_state_at_the_end(tmp_path: Path, case: str) -> None:
    model = build(case, cells_every=30.0)
    run_observed(model, tmp_path)
    table = pd.read_parquet(tmp_path / "cells")
    every = 30.0
    expected_times = np.arange(0.0, model.run["t_end"] + every / 2, every)
    np.testing.assert_allclose(np.sort(table["time"].unique()), expected_times)
    last = table[table["time"] == model.t].sort_values("cell_id").reset_index(drop=True)
    truth = agents_now(model)
    assert len(last) == len(truth) > 0
    np.testing.assert_array_equal(last["cell_id"], truth["cell_id"])
    assert list(last["population"].astype(str)) == list(truth["population"])
    assert list(last["kind"].astype(str)) == list(truth["kind"])
    for col in truth.columns.drop(["cell_id", "population", "kind"]):
        got, want = last[col].to_numpy(float), truth[col].to_numpy(float)
        np.testing.assert_array_equal(got, want, err_msg=col)  # NaN where a pop lacks it


def test_lineage_parent_id_is_the_dividing_cell(tmp_path: Path) -> None:
    model = build("1d", cells_every=30.0)
    pairs: list[tuple[int, int]] = []
    divide = model.divide_cell

    def spy(agent):
        daughter = divide(agent)
        if daughter is not None:
            pairs.append((agent.unique_id, daughter.unique_id))
        return daughter

    model.divide_cell = spy  # the engine calls self.divide_cell: record who begot whom
    run_observed(model, tmp_path)
    table = pd.read_parquet(tmp_path / "cells")
    assert pairs, "the 1-D demo should divide within 180 min (counters: divisions)"
    parent_of = table.drop_duplicates("cell_id").set_index("cell_id")["parent_id"]
    initial = table[table["time"] == 0.0]
    assert initial["parent_id"].isna().all()
    for parent, daughter in pairs:
        if daughter in parent_of.index:  # a daughter that died before an output is absent
            assert parent_of[daughter] == parent
    assert sum(d in parent_of.index for _, d in pairs) > 0


def test_cells_table_readable_while_the_run_goes(tmp_path: Path) -> None:
    import xarray as xr

    model = build("2d", cells_every=30.0, fields_every=30.0)
    obs = run_observed(model, tmp_path, steps=13)  # demo tick 5 min: t = 65, outputs 0..60
    ds = xr.open_zarr(tmp_path / "fields.zarr", consolidated=False, decode_timedelta=False)
    np.testing.assert_allclose(ds["time"], [0.0, 30.0, 60.0])
    assert ds["signal"].sizes["time"] == 3
    # A writer killed mid-file leaves only a hidden temporary, which readers skip.
    (tmp_path / "cells" / ".cells-000099.parquet.x.tmp").write_bytes(b"PAR1 truncated")
    partial = pd.read_parquet(tmp_path / "cells")
    np.testing.assert_allclose(np.sort(partial["time"].unique()), [0.0, 30.0, 60.0])
    assert obs.manifest()["cells"]["n_outputs"] == 3
    now = partial[partial["time"] == 60.0]
    assert now["cell_id"].is_unique and len(now) > 0


@pytest.mark.parametrize("case", ["2d", "3d"])
def test_fields_dataset_equals_tissue_values(tmp_path: Path, case: str) -> None:
    import xarray as xr

    model = build(case, fields_every=30.0)
    run_observed(model, tmp_path)
    ds = xr.open_zarr(tmp_path / "fields.zarr", consolidated=False, decode_timedelta=False)
    np.testing.assert_allclose(ds["time"], np.arange(0.0, model.run["t_end"] + 15.0, 30.0))
    assert ds["time"].attrs["units"] == model.time_units
    sites = np.arange(model.lattice.n_sites)
    pos = model.lattice.positions(sites)
    for name, spec in model.tissue.specs.items():
        var = ds[name]
        assert var.attrs["units"] == spec.units and var.attrs["long_name"]
        assert var.dims == ("time", *"xyz"[: model.lattice.ndim])
        last = var.isel(time=-1)
        sel = {ax: xr.DataArray(pos[:, a], dims="site") for a, ax in enumerate(last.dims)}
        got = last.sel(sel).to_numpy()  # exact: coordinates are the site centres in µm
        np.testing.assert_array_equal(got, model.tissue.values(name))
    for ax in "xyz"[: model.lattice.ndim]:
        assert ds[ax].attrs["units"] == "µm"


def _pvd(path: Path) -> list[tuple[float, str]]:
    root = ET.parse(path).getroot()
    return [(float(d.get("timestep")), d.get("file")) for d in root.iter("DataSet")]


@pytest.mark.parametrize("case", ["1d", "2d", "3d"])
def test_vtk_read_back_equals_model_state(tmp_path: Path, case: str) -> None:
    model = build(case, vtk_every=60.0)
    run_observed(model, tmp_path)
    vtk = tmp_path / "vtk"
    times = list(np.arange(0.0, model.run["t_end"] + 30.0, 60.0))
    for kind in ("fields", "cells"):
        entries = _pvd(vtk / f"{kind}.pvd")
        assert [t for t, _ in entries] == times
        assert all((vtk / f).is_file() for _, f in entries)
    # Fields: one VTK cell per site, its centroid at the site centre, values in site order.
    mesh = meshio.read(vtk / _pvd(vtk / "fields.pvd")[-1][1])
    assert mesh.cells[0].type == {1: "line", 2: "quad", 3: "hexahedron"}[model.lattice.ndim]
    conn = mesh.cells[0].data
    centroid = mesh.points[conn].mean(axis=1)[:, : model.lattice.ndim]
    np.testing.assert_allclose(
        centroid, model.lattice.positions(np.arange(model.lattice.n_sites)), atol=1e-9
    )
    for name in model.tissue.names:
        np.testing.assert_array_equal(mesh.cell_data[name][0], model.tissue.values(name))
    # Cells: points at the cell positions with their species as point data.
    pts = meshio.read(vtk / _pvd(vtk / "cells.pvd")[-1][1])
    truth = agents_now(model)
    order = np.argsort(pts.point_data["cell_id"])
    np.testing.assert_array_equal(pts.point_data["cell_id"][order], truth["cell_id"])
    for a in range(model.lattice.ndim):
        np.testing.assert_array_equal(pts.points[order, a], truth[f"{'xyz'[a]}_um"])
    species = [c for c in truth.columns if c not in {"cell_id", "population", "kind"}]
    for s in species:
        if s.endswith("_um"):
            continue
        np.testing.assert_array_equal(pts.point_data[s][order], truth[s].to_numpy(float))


def test_run_writes_manifest_and_load_run_reads_everything(tmp_path: Path) -> None:
    out = tmp_path / "run"
    name, overrides = CASES["2d"]
    res = biohybrid.run(
        name,
        overrides={**overrides, "cells_every": 60.0, "fields_every": 30.0},
        out=out,
        figures=False,
    )
    assert res.ok
    run = load_run(out)
    pd.testing.assert_frame_equal(run.biomarkers, res.biomarkers, check_exact=False, rtol=1e-12)
    assert run.summary == res.summary
    outputs = run.manifest["outputs"]
    assert set(outputs) == {"cells", "fields"}
    assert outputs["cells"]["every"] == 60.0 and outputs["cells"]["n_outputs"] == 4
    assert outputs["fields"]["n_outputs"] == 7
    files = sorted((out / "cells").glob("*.parquet"))
    assert outputs["cells"]["bytes"] == sum(f.stat().st_size for f in files)
    store = [f for f in (out / "fields.zarr").rglob("*") if f.is_file()]
    assert outputs["fields"]["bytes"] == sum(f.stat().st_size for f in store)
    np.testing.assert_allclose(np.sort(run.cells["time"].unique()), [0, 60, 120, 180])
    assert run.cells["parent_id"].dtype == "Int64"
    declared = dict(build("2d").system.units)  # the demo system's own declaration
    assert run.cell_units == declared and declared
    one = run.read_cells(times=[60.0], columns=["time", "cell_id"])
    assert list(one.columns) == ["time", "cell_id"] and set(one["time"]) == {60.0}
    assert len(one) == (run.cells["time"] == 60.0).sum()
    n_end = run.cells[run.cells["time"] == 180.0].shape[0]
    assert n_end == res.biomarkers["n_cells"].iloc[-1]
    np.testing.assert_allclose(run.fields["time"], np.arange(0.0, 181.0, 30.0))
    assert "vtk" not in outputs and not (out / "vtk").exists()


def test_load_run_refuses_what_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a run folder"):
        load_run(tmp_path)
    out = tmp_path / "run"
    res = biohybrid.run("demo", overrides={**CASES["1d"][1], "t_end": 60.0}, out=out, figures=False)
    assert res.ok and "outputs" not in load_run(out).manifest
    with pytest.raises(UserError, match="cells_every"):
        _ = load_run(out).cells
    with pytest.raises(UserError, match="fields_every"):
        _ = load_run(out).fields


@pytest.mark.parametrize(
    ("setting", "value", "match"),
    [
        ("cells_every", 45.0, "not a whole multiple of dt_output"),  # demo dt_output = 30
        ("fields_every", 120.0, "t_end = 180 .* not a whole multiple of fields_every"),
        ("vtk_every", -30.0, "vtk_every"),
        ("cell_every", 30.0, "cells_every"),  # unknown name: did-you-mean
    ],
)
def test_bad_intervals_are_user_errors_before_any_file(
    tmp_path: Path, setting: str, value: float, match: str
) -> None:
    out = tmp_path / "run"
    with pytest.raises(UserError, match=match):
        biohybrid.run("demo", overrides={**CASES["1d"][1], setting: value}, out=out)
    assert not out.exists()


def test_zero_interval_is_off(tmp_path: Path) -> None:
    model = build("1d", cells_every=0.0, fields_every=30.0)
    obs = run_observed(model, tmp_path, steps=1)
    assert set(obs.manifest()) == {"fields"} and not (tmp_path / "cells").exists()


def test_outputs_of_a_model_without_cells(tmp_path: Path) -> None:
    model = build("3d", cells_every=30.0, vtk_every=30.0)
    for agent in list(model.agents):
        model.remove_cell(agent)
    OutputObserver(model, tmp_path)  # writes the t = 0 outputs at once
    table = pd.read_parquet(tmp_path / "cells")
    assert len(table) == 0 and {"cell_id", "parent_id", "x_um", "z_um", "a", "r"} <= set(table)
    # meshio cannot read a grid without points; the file is valid VTK XML with none.
    root = ET.parse(tmp_path / "vtk" / "cells-000000.vtu").getroot()
    piece = root.find("UnstructuredGrid/Piece")
    assert piece.get("NumberOfPoints") == "0" and piece.get("NumberOfCells") == "0"
    names = {d.get("Name") for d in piece.find("PointData")}
    assert {"cell_id", "parent_id", "a", "r"} <= names


def test_cli_refuses_an_interval_that_does_not_divide_the_run(tmp_path: Path, cli_env) -> None:
    exe = str(Path(sys.executable).with_name("biohybrid"))
    out = tmp_path / "run"
    proc = subprocess.run(
        [exe, "run", "demo", "--set", "t_end=180", "--set", "cells_every=45", "--out", str(out)],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "cells_every = 45" in proc.stderr + proc.stdout
    assert not out.exists()
