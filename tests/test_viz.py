"""Run figures and the viz adapter: frames, colour scales, GIF pixels, parameter inputs, CLI.

Expected values are exact by construction (site indexing ``s = i + nx * j``, palette index
ranges, declared parameter bounds), so each test can fail on a wrong orientation, colour or
default.
"""

from __future__ import annotations

import io
import socket
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from biohybrid.errors import UserError
from biohybrid.geometry import Lattice
from biohybrid.intracellular.state_table import StateTable
from biohybrid.runner import run
from biohybrid.scenario import load_scenario
from biohybrid.viz import access
from biohybrid.viz.adapter import config_env, load_config, slider_range, user_params
from biohybrid.viz.colors import color_limits
from biohybrid.viz.frames import (
    VOLUME_BYTES,
    FrameRecorder,
    FrameWindow,
    GridFrame,
    Planes,
    capture,
    kymograph,
    site_image,
    stride_for,
    time_edges,
)
from biohybrid.viz.outputs import (
    animation_gif,
    display_species,
    kymograph_figure,
    pick_frames,
    write_run_figures,
)
from biohybrid.viz.render import (
    PAL_CELLS,
    PAL_EMPTY,
    PAL_FIELD,
    PAL_UNDER,
    BiomarkerPainter,
    TissuePainter,
    biomarker_figure,
    figure_png,
    gif_palette,
    kymograph_view_figure,
    tissue_indices,
    tissue_view_figure,
)


def _model(overrides):
    sc = load_scenario("demo", overrides)
    return sc.model_class(params=sc.params, run=sc.run, seed=sc.seed)


# ---------------------------------------------------------------- arrays and colours
def test_site_image_puts_site_i_plus_nx_j_at_row_j_column_i():
    img = site_image(np.array([0, 7, 11]), np.array([1.0, 2.0, 3.0]), nx=4, ny=3)
    assert img.shape == (3, 4)
    assert img[0, 0] == 1.0 and img[1, 3] == 2.0 and img[2, 3] == 3.0  # 7 = 3 + 4*1
    assert np.isnan(img).sum() == 12 - 3


def test_stride_keeps_sides_within_limit():
    assert stride_for(400, 10, 400) == 1
    assert stride_for(401, 10, 400) == 2
    assert stride_for(4096, 4096, 400) == 11  # ceil(4096 / 400)


def test_color_limits_ignore_nan_and_widen_constant_data():
    assert color_limits(np.array([np.nan, 1.0, 3.0]), np.array([-2.0])) == (-2.0, 3.0)
    assert color_limits(np.array([np.nan])) == (0.0, 1.0)
    lo, hi = color_limits(np.array([2.0, 2.0]))
    assert lo < 2.0 < hi


def test_tissue_indices_cells_over_field_flipped_to_image_rows():
    cells = np.array([[np.nan, 1.0], [0.0, np.nan]])  # row 0 is grid y = 0
    field = np.array([[0.0, 0.0], [0.0, 1.0]])
    idx = tissue_indices(cells, field, (0.0, 1.0), (0.0, 1.0))
    # Image row 0 is the top, i.e. grid y = 1.
    assert idx[0, 0] == PAL_CELLS[0]  # cell value 0 -> first cell colour
    assert idx[0, 1] == PAL_UNDER[1] - 1  # empty site over field 1 -> darkest grey
    assert idx[1, 0] == PAL_UNDER[0]  # empty site over field 0 -> lightest grey
    assert idx[1, 1] == PAL_CELLS[1] - 1  # cell value 1 -> last cell colour
    no_field = tissue_indices(cells, None, (0.0, 1.0), (0.0, 1.0), scale=3)
    assert no_field.shape == (6, 6) and no_field[0, 3] == PAL_EMPTY


def test_gif_palette_has_256_rgb_entries():
    pal = gif_palette("viridis")
    assert len(pal) == 768
    assert pal[3 * 250 : 3 * 251] == [255, 255, 255]  # PAL_WHITE


# ---------------------------------------------------------------- frames from a model
def test_capture_matches_table_and_field(fast_demo):
    m = _model(fast_demo)
    for _ in range(3):
        m.step()
    kinds: list[str] = []
    f = capture(m, kinds)
    rows = m.table.live_rows()
    sites = m.table.attrs["site"][rows]
    j, i = sites // m.nx, sites % m.nx
    np.testing.assert_allclose(f.species["x"][j, i], m.table.species_values("x"), rtol=1e-6)
    assert np.isnan(f.species["x"]).sum() == m.nx * m.ny - rows.size
    assert f.n_cells == rows.size and kinds == ["cell"]
    np.testing.assert_allclose(f.fields["signal"], m.tissue.grid("signal"), rtol=1e-6)
    assert f.t == m.t and f.dx == m.dx


def test_frame_recorder_stays_bounded_and_evenly_spaced():
    # dt_output = dt_ode = 5 min over 300 min: 61 output steps into at most 8 frames.
    m = _model({"t_end": 300.0, "dt_output": 5.0, "dt_behaviour": 5.0, "nx": 8, "ny": 8})
    rec = FrameRecorder.for_model(m, max_frames=8)
    while m.running and m.tick < m.schedule.n_ticks:
        m.step()
        rec.observe(m)
    assert len(rec.frames) <= 8
    times = np.array([f.t for f in rec.frames])
    assert times[0] == 0.0
    np.testing.assert_allclose(np.diff(times), 5.0 * rec.stride)
    rec.observe(m, final=True)
    assert rec.frames[-1].t == m.t == 300.0


def test_frame_recorder_is_none_without_space():
    assert FrameRecorder.for_model(_model({"nx": 1, "ny": 1, "seed_radius": 0.5})) is None


def test_pick_frames_keeps_first_and_last():
    frames = list(range(10))
    assert pick_frames(frames, 4) == [0, 3, 6, 9]  # type: ignore[arg-type]
    assert pick_frames(frames[:3], 4) == [0, 1, 2]  # type: ignore[arg-type]


# ---------------------------------------------------------------- run figures
def test_run_writes_snapshots_and_animation(tmp_path, fast_demo):
    res = run("demo", overrides=fast_demo, out=tmp_path / "r")
    assert res.ok
    figs = tmp_path / "r" / "figures"
    snap = Image.open(figs / "snapshots.png")
    assert snap.size[0] > 600 and np.asarray(snap.convert("L")).std() > 10
    gif = Image.open(figs / "animation.gif")
    n_out = len(res.biomarkers)  # 180 min / 30 min + 1 = 7 output steps, all kept
    assert n_out == 7 and gif.n_frames == n_out
    assert "figure_error" not in (tmp_path / "r" / "manifest.json").read_text()


def test_run_on_one_site_writes_no_spatial_figures(tmp_path):
    res = run("demo", overrides={"nx": 1, "ny": 1, "t_end": 60.0, "seed_radius": 0.5},
              out=tmp_path / "r")  # fmt: skip
    assert res.ok
    names = sorted(p.name for p in (tmp_path / "r" / "figures").iterdir())
    assert names == ["biomarkers.png"]


def test_animation_pixels_show_the_cells_colour(fast_demo):
    m = _model(fast_demo)
    rec = FrameRecorder.for_model(m)
    frame = rec.frames[0]
    gif = Image.open(io.BytesIO(animation_gif(rec.frames, "x", "min", side=m.nx)))
    # Frame layout: 18 px caption, 6 px margin, grid flipped; the centre site holds a cell.
    ci, cj = m.nx // 2, m.ny // 2
    assert np.isfinite(frame.species["x"][cj, ci])
    rgb = np.asarray(gif.convert("RGB"))
    pix = rgb[18 + (m.ny - 1 - cj), 6 + ci]
    lo, hi = color_limits(frame.species["x"])
    level = round((frame.species["x"][cj, ci] - lo) / (hi - lo) * (PAL_CELLS[1] - 1))
    pal = np.array(gif_palette("viridis")).reshape(256, 3)
    np.testing.assert_array_equal(pix, pal[PAL_CELLS[0] + level])


def test_display_species_prefers_model_choice_then_spread(fast_demo):
    m = _model(fast_demo)
    frames = [capture(m)]
    assert display_species(["r", "x"], frames, preferred="r") == "r"
    # At t = 0 every r is 0 and x is uniform in [0, 0.2): x varies most.
    assert display_species(["r", "x"], frames) == "x"
    # A calcium-like species is shown first when the model names none.
    img = np.zeros((2, 2), dtype=np.float32)
    f = GridFrame(0.0, {"h": img, "Ca": img, "ip3": img + np.array([[0, 9], [0, 0]])}, img, {}, 1.0)
    assert display_species(["h", "Ca", "ip3"], [f]) == "Ca"


def test_live_figures_render(fast_demo):
    m = _model(fast_demo)
    m.step()
    f = capture(m)
    for color_by, field in (("x", "signal"), ("phenotype", "none"), ("r", "none")):
        fig = tissue_view_figure(f, color_by, field, ["cell"], {"signal": "µM"}, "min")
        assert figure_png(fig).startswith(b"\x89PNG")
    fig = biomarker_figure(m.recorder.frame(), m.recorder.units, "min", (m.t, m.measure()))
    assert len([a for a in fig.axes if a.get_visible()]) == len(m.biomarkers)


# ---------------------------------------------------------------- adapter and CLI
def test_user_params_start_at_scenario_values_with_units():
    cfg = load_config("demo", {"s_max": 20.0}, None, env={})
    sc = cfg.scenario
    inputs = user_params(sc)
    assert set(inputs) == set(sc.model_class.parameters)
    assert inputs["s_max"]["value"] == 20.0  # the --set value, as the CLI would use
    assert inputs["diffusion"]["value"] == sc.params["diffusion"]
    assert "µm²/min" in inputs["diffusion"]["label"]
    for name, opt in inputs.items():
        assert opt["min"] <= opt["value"] <= opt["max"], name
    model = cfg.model_class(**cfg.initial_values())
    assert model.params == sc.params and model.run == sc.run and model.seed == sc.seed
    # SolaraViz's Reset: type(model)(**values, scenario=<Mesa scenario>) rebuilds the same model.
    again = type(model)(**cfg.initial_values(), scenario=model.scenario)
    assert again.params == sc.params and again.seed == sc.seed
    assert type(model)(**cfg.initial_values(), seed=5).seed == 5
    with pytest.raises(UserError, match="diffusion"):
        cfg.model_class(**{**cfg.initial_values(), "diffusion": -1.0})


def test_slider_range_respects_exclusive_bounds():
    from biohybrid.params import Param

    lo, hi, step = slider_range(Param(6.0, "sites", "radius", gt=0), 6.0)
    assert lo > 0 and hi == 24.0 and step == pytest.approx(0.12)
    lo, hi, _ = slider_range(Param(0.5, "1", "p", ge=0, lt=1), 0.5)
    assert lo == 0 and hi < 1


def test_config_round_trips_through_environment():
    env = config_env("demo", {"nx": 12}, 7)
    cfg = load_config(env=env)
    assert cfg.scenario.run["nx"] == 12 and cfg.scenario.seed == 7


def _main(monkeypatch, *args):
    from biohybrid.cli import main

    monkeypatch.setattr(sys, "argv", ["biohybrid", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return exc.value.code


def test_viz_cli_rejects_bad_input_before_serving(monkeypatch, capsys):
    monkeypatch.setattr("os.execve", lambda *a: pytest.fail("server must not start"))
    assert _main(monkeypatch, "viz", "no-such-scenario") == 2
    assert "Unknown scenario" in capsys.readouterr().err
    assert _main(monkeypatch, "viz", "demo", "--set", "diffusion=-1") == 2
    assert "diffusion" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert _main(monkeypatch, "viz", "demo", "--port", str(port)) == 2
    assert "choose another --port" in capsys.readouterr().err


def test_viz_cli_execs_solara_on_localhost(monkeypatch):
    calls = []
    monkeypatch.setattr("os.execve", lambda exe, argv, env: calls.append((argv, env)))
    from biohybrid.cli import main

    monkeypatch.setattr(sys, "argv", ["biohybrid", "viz", "demo", "--port", "0", "-s", "nx=9"])
    main()
    ((argv, env),) = calls
    assert argv[1:5] == ["-m", "solara", "run", "biohybrid.viz.app"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert load_config(env=env).scenario.run["nx"] == 9


def test_every_bundled_scenario_gets_valid_inputs():
    from biohybrid.registry import bundled_scenarios

    for name in bundled_scenarios():
        cfg = load_config(name, {}, None, env={})
        sc = cfg.scenario
        for pname, opt in cfg.model_params.items():
            assert opt["value"] == sc.params[pname] or opt["type"] == "InputText", (name, pname)
            if "min" in opt:
                assert opt["min"] <= opt["value"] <= opt["max"], (name, pname)
        # The inputs' starting values resolve to exactly the CLI's parameters.
        again = load_scenario(sc.source, cfg.initial_values(), sc.seed)
        assert again.params == sc.params, name


def test_painters_repaint_exactly_like_fresh_figures(fast_demo):
    m = _model(fast_demo)
    tissue, bio = TissuePainter(), BiomarkerPainter()
    kinds: list[str] = []
    units = {"signal": "µM"}
    for _ in range(2):
        tissue.paint(capture(m, kinds), "x", "signal", kinds, units, "min")
        bio.paint(m.recorder.frame(), m.recorder.units, "min", (m.t + 1, m.measure()))
        for _ in range(7):  # past an output step: new rows, new colour limits
            m.step()
    frame = capture(m, kinds)
    live = (m.t + 1, m.measure())
    pairs = [
        (
            tissue.paint(frame, "x", "signal", kinds, units, "min"),
            tissue_view_figure(frame, "x", "signal", kinds, units, "min"),
        ),
        (
            bio.paint(m.recorder.frame(), m.recorder.units, "min", live),
            biomarker_figure(m.recorder.frame(), m.recorder.units, "min", live),
        ),
    ]
    for updated, fresh in pairs:
        a = np.asarray(Image.open(io.BytesIO(figure_png(updated))).convert("RGB"), dtype=int)
        b = np.asarray(Image.open(io.BytesIO(figure_png(fresh))).convert("RGB"), dtype=int)
        assert a.shape == b.shape
        assert np.mean(np.abs(a - b) > 0) < 0.001  # identical up to a few anti-aliased pixels


# ---------------------------------------------------------------- any dimension (fake models)
class _Tissue:
    """A tissue layer as the views see it: names, per-site values, units."""

    def __init__(self, names, n_sites):
        self.names = tuple(names)
        self.specs = {n: SimpleNamespace(units="µM") for n in names}
        self._values = {n: np.zeros(n_sites) for n in names}

    def values(self, name):
        return self._values[name].copy()


class FakeModel:
    """The least a model offers the views (see biohybrid.viz.access): a lattice, one state
    table with a cell on each occupied site, a tissue, a time and recorded output times."""

    name, time_units, display_species = "fake", "s", ""

    def __init__(self, shape, spacing, occupied=None, species=("ca", "h"), fields=("signal",)):
        self.lattice = Lattice(shape, spacing)
        n = self.lattice.n_sites
        occupied = np.ones(n, dtype=bool) if occupied is None else np.asarray(occupied)
        self.table = StateTable(species, capacity=n)
        for s in np.flatnonzero(occupied):
            self.table.add(np.zeros(len(species)), site=int(s))
        self.tissue = _Tissue(fields, n) if fields else None
        self.system = SimpleNamespace(units={"ca": "µM"})
        self.recorder = SimpleNamespace(times=[0.0], units={})  # the initial output row
        self.t = 0.0

    def agent_at_row(self, row):
        return SimpleNamespace(kind="cell" if row % 2 == 0 else "other")

    def set_cells(self, name, per_site):
        rows = self.table.live_rows()
        y = self.table.get(rows)
        y[:, self.table.column(name)] = np.asarray(per_site)[self.table.attrs["site"][rows]]
        self.table.set_rows(rows, y)

    def set_field(self, name, per_site):
        self.tissue._values[name] = np.asarray(per_site, dtype=float)

    def record(self, t):
        self.t = t
        self.recorder.times.append(t)


#: A pulse travelling along a cable: x(t) = X0 + C·t on sites of H µm, one frame every DT s.
H, X0, C, DT, N_SITES, N_T = 2.0, 11.0, 2.0, 3.0, 50, 12


def _pulse_run(empty=(0, 49)):
    """Frames of a 1-D cable whose cells are 1.0 at the pulse, 0.1 elsewhere; the field is
    2·i (site i) and does not move. Sites in ``empty`` hold no cell."""
    occupied = np.ones(N_SITES, dtype=bool)
    occupied[list(empty)] = False
    m = FakeModel((N_SITES,), H, occupied)
    m.set_field("signal", 2.0 * np.arange(N_SITES))
    rec = None
    for step in range(N_T):
        t = step * DT
        pulse = np.where(np.arange(N_SITES) == int((X0 + C * t) // H), 1.0, 0.1)
        m.set_cells("ca", pulse)
        if rec is None:
            rec = FrameRecorder.for_model(m)
        else:
            m.record(t)
            rec.observe(m)
    return m, rec


def test_kymograph_puts_a_moving_pulse_on_its_diagonal():
    _, rec = _pulse_run()
    times, kymo = kymograph(rec.frames, "species", "ca")
    np.testing.assert_allclose(times, DT * np.arange(N_T))
    assert kymo.shape == (N_T, N_SITES)
    # The brightest site of row m is centred on the pulse: (i + 0.5)·H = X0 + C·t_m.
    centres = (np.nanargmax(kymo, axis=1) + 0.5) * H
    np.testing.assert_allclose(centres, X0 + C * times)
    assert np.isnan(kymo[:, [0, 49]]).all() and np.isfinite(kymo[:, 1:49]).all()
    # The figure draws exactly that image on µm × time edges (rows centred on the times).
    fig = kymograph_figure(rec.frames, "ca", {"ca": "µM"}, "s")
    mesh = fig.axes[0].collections[-1]  # the cells, drawn over the grey field
    np.testing.assert_array_equal(np.ma.filled(mesh.get_array(), np.nan), kymo)
    xy = mesh.get_coordinates()
    np.testing.assert_allclose(xy[0, :, 0], H * np.arange(N_SITES + 1))
    np.testing.assert_allclose(xy[:, 0, 1], DT * (np.arange(N_T + 1) - 0.5))
    assert fig.axes[0].get_ylabel() == "time (s)"


def test_time_edges_are_midpoints():
    np.testing.assert_allclose(time_edges(np.array([0.0, 2.0, 6.0])), [-1.0, 1.0, 4.0, 8.0])
    np.testing.assert_allclose(time_edges(np.array([5.0])), [4.5, 5.5])


def test_kymograph_gif_grows_one_row_per_frame_with_the_cells_colours():
    _, rec = _pulse_run()
    side = 2 * N_SITES  # 2 px per site across, 100 // 12 = 8 px per frame up
    cs, rs = 2, side // N_T
    gif = Image.open(io.BytesIO(animation_gif(rec.frames, "ca", "s", side=side)))
    assert gif.n_frames == N_T
    pal = np.array(gif_palette("inferno")).reshape(256, 3)  # "ca" is drawn in inferno
    top, left = 18, 6  # caption height, margin (see labelled_strip)
    field_left = left + N_SITES * cs + 6
    for n in (0, 5, N_T - 1):
        gif.seek(n)
        rgb = np.asarray(gif.convert("RGB"))
        for m in range(N_T):
            y = top + (N_T - 1 - m) * rs + rs // 2  # time increases upwards
            i_pulse = int((X0 + C * DT * m) // H)
            if m > n:  # a row still to come is white
                np.testing.assert_array_equal(rgb[y, left + i_pulse * cs], [255, 255, 255])
                continue
            # Cell limits are (0.1, 1.0): the pulse is the last cell colour; site 45 (never
            # reached) the first.
            np.testing.assert_array_equal(rgb[y, left + i_pulse * cs], pal[PAL_CELLS[1] - 1])
            np.testing.assert_array_equal(rgb[y, left + 45 * cs], pal[PAL_CELLS[0]])
            # Site 49 is empty: the grey field underneath, at its maximum 2·49 (darkest).
            np.testing.assert_array_equal(rgb[y, left + 49 * cs], pal[PAL_UNDER[1] - 1])
            # The field alone (magma range): site 0 holds 0, its lowest colour.
            np.testing.assert_array_equal(rgb[y, field_left], pal[PAL_FIELD[0]])


def _volume_model(shape=(5, 4, 3), spacing=(1.0, 2.0, 3.0)):
    """A 3-D model whose cells hold ca = 100·i + 10·j + k at site (i, j, k) and field = −ca."""
    m = FakeModel(shape, spacing)
    ijk = m.lattice.coordinates(np.arange(m.lattice.n_sites))
    code = 100.0 * ijk[:, 0] + 10.0 * ijk[:, 1] + ijk[:, 2]
    m.set_cells("ca", code)
    m.set_field("signal", -code)
    return m


def _code(i, j, k):
    return 100.0 * i + 10.0 * j + k


@pytest.mark.parametrize("max_bytes", [np.inf, 0], ids=["volume", "planes"])
def test_3d_sections_show_exactly_the_selected_plane(max_bytes):
    m = _volume_model()
    nx, ny, nz = m.lattice.shape
    f = capture(m, max_volume_bytes=max_bytes, point=(3, 1, 2))
    assert isinstance(f.species["ca"], Planes) == (max_bytes == 0)
    assert f.n_cells == nx * ny * nz and f.point == (3, 1, 2)
    i, j, k = np.arange(nx), np.arange(ny), np.arange(nz)
    xy = f.section("x-y")  # z = 2: rows y, columns x
    np.testing.assert_array_equal(xy.species["ca"], _code(i[None, :], j[:, None], 2))
    xz = f.section("x-z")  # y = 1: rows z, columns x
    np.testing.assert_array_equal(xz.species["ca"], _code(i[None, :], 1, k[:, None]))
    yz = f.section("y-z")  # x = 3: rows z, columns y
    np.testing.assert_array_equal(yz.species["ca"], _code(3, j[None, :], k[:, None]))
    np.testing.assert_array_equal(yz.fields["signal"], -yz.species["ca"])
    assert (xz.axes, xz.spacing, xz.shape) == (("x", "z"), (1.0, 3.0), (nx, nz))
    assert xz.where.startswith("y = 3 µm")  # centre of site j = 1 at 2 µm spacing
    if max_bytes == 0:
        with pytest.raises(UserError, match="only the planes through"):
            f.section("x-y", 0)
    else:
        np.testing.assert_array_equal(
            f.section("x-y", 0).species["ca"], _code(i[None, :], j[:, None], 0)
        )
    with pytest.raises(UserError, match="planes are"):
        f.section("x-w")


def test_3d_section_figure_draws_the_plane_upright_in_micrometres():
    m = _volume_model()
    xz = capture(m, point=(3, 1, 2)).section("x-z")
    fig = tissue_view_figure(xz, "ca", "none", ["cell"], {}, "s")
    ax = fig.axes[0]
    im = ax.images[-1]
    k, i = np.arange(3)[:, None], np.arange(5)[None, :]
    np.testing.assert_array_equal(np.ma.filled(im.get_array(), np.nan), _code(i, 1, k))
    assert im.origin == "lower" and im.get_extent() == [0.0, 5 * 1.0, 0.0, 3 * 3.0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x (µm)", "z (µm)")
    assert "y = 3 µm" in ax.get_title()


def test_3d_frames_keep_planes_beyond_the_volume_budget():
    small = capture(_volume_model())
    assert isinstance(small.species["ca"], np.ndarray) and small.species["ca"].shape == (3, 4, 5)
    # 40³ sites × (2 species + 1 field) × 4 bytes + 2 bytes of phenotype > VOLUME_BYTES.
    big = FakeModel((40, 40, 40), 1.0, fields=("signal",))
    assert 40**3 * (3 * 4 + 2) > VOLUME_BYTES
    rec = FrameRecorder.for_model(big)
    f = rec.frames[0]
    assert isinstance(f.species["ca"], Planes) and f.point == (20, 20, 20)
    stored = sum(a.ravel().nbytes for a in (*f.species.values(), *f.fields.values(), f.kinds))
    assert stored == (3 * 4 + 2) * 3 * 40 * 40  # three 40 × 40 planes per array
    assert f.n_cells == 40**3


def test_3d_gif_shows_the_three_planes():
    m = _volume_model()
    rec = FrameRecorder.for_model(m)
    for t in (1.0, 2.0):
        m.record(t)
        rec.observe(m)
    side = 10  # 10 // 5 = 2 px per site
    gif = Image.open(io.BytesIO(animation_gif(rec.frames, "ca", "s", side=side)))
    assert gif.n_frames == 3
    rgb = np.asarray(gif.convert("RGB"))
    pal = np.array(gif_palette("inferno")).reshape(256, 3)
    lo, hi = 0.0, _code(4, 3, 2)  # the smallest and largest code over the volume
    i0, j0, k0 = 2, 2, 1  # default point: the centre (5 // 2, 4 // 2, 3 // 2)

    def expect(v):
        return pal[PAL_CELLS[0] + round((v - lo) / (hi - lo) * (PAL_CELLS[1] - 1))]

    top, s = 18, 2
    lefts = [6, 6 + 5 * s + 6, 6 + 10 * s + 12]  # x-y (5 wide), x-z (5 wide), y-z (4 wide)
    # x-y at z = 1: site (i=4, j=0) is in the bottom row (y up), column 4.
    np.testing.assert_array_equal(rgb[top + (4 - 1) * s, lefts[0] + 4 * s], expect(_code(4, 0, k0)))
    # x-z at y = 2: site (i=1, k=2) is in the top row (z up), column 1.
    np.testing.assert_array_equal(rgb[top, lefts[1] + 1 * s], expect(_code(1, j0, 2)))
    # y-z at x = 2: site (j=3, k=0) is in the bottom row, column 3.
    np.testing.assert_array_equal(rgb[top + 2 * s, lefts[2] + 3 * s], expect(_code(i0, 3, 0)))


def test_run_figures_in_one_and_three_dimensions(tmp_path):
    m, rec = _pulse_run()
    written = write_run_figures(m, tmp_path / "cable", rec)
    assert sorted(p.name for p in written) == ["animation.gif", "kymograph.png", "snapshots.png"]
    assert Image.open(written[0]).size[0] > 300
    assert Image.open(tmp_path / "cable" / "figures" / "animation.gif").n_frames == N_T
    vol = _volume_model()
    written = write_run_figures(vol, tmp_path / "vol", FrameRecorder.for_model(vol))
    assert sorted(p.name for p in written) == ["animation.gif", "snapshots.png"]
    snap = np.asarray(Image.open(tmp_path / "vol" / "figures" / "snapshots.png").convert("L"))
    assert snap.shape[0] > 600 and snap.std() > 10  # 3 plane rows + 1 field row


def test_frame_window_keeps_the_latest_frames_and_restarts_on_reset():
    def frame(t):
        return GridFrame(t, {}, np.zeros(3, dtype=np.int16), {}, 1.0)

    w = FrameWindow(max_frames=3)
    for t in range(5):
        w.push(frame(float(t)))
    assert [f.t for f in w.frames] == [2.0, 3.0, 4.0]
    w.push(frame(4.0))  # the same time again (a repaint): replaced, not added
    assert [f.t for f in w.frames] == [2.0, 3.0, 4.0]
    w.push(frame(0.0))  # earlier: the model was reset
    assert [f.t for f in w.frames] == [0.0]


def test_cell_values_over_several_populations():
    m = FakeModel((4,), 1.0, occupied=[True, True, False, False], fields=())
    other = StateTable(("ca", "v"), capacity=2)
    other.add([7.0, 1.0], site=2)
    m.populations = {
        "epithelium": SimpleNamespace(table=m.table),
        "immune": SimpleNamespace(table=other),
    }
    m.set_cells("ca", [1.0, 2.0, 0.0, 0.0])
    np.testing.assert_array_equal(access.cell_values(m, "ca"), [1.0, 2.0, 7.0, np.nan])
    np.testing.assert_array_equal(access.cell_values(m, "v"), [np.nan, np.nan, 1.0, np.nan])
    kinds: list[str] = []
    np.testing.assert_array_equal(access.cell_kinds(m, kinds), [0, 0, 1, -1])
    assert kinds == ["epithelium", "immune"] and access.species(m) == ["ca", "h", "v"]
    with pytest.raises(UserError, match="unknown species 'k'"):
        access.cell_values(m, "k")


# ---------------------------------------------------------------- one biomarker figure
def test_run_and_live_biomarkers_are_one_drawing(monkeypatch):
    from biohybrid.figures import plot_biomarkers
    from biohybrid.viz import render

    t = np.linspace(0.0, 10.0, 6)
    df = pd.DataFrame({"a": t**2, "b": np.sin(t), "c": -t}, index=pd.Index(t, name="t"))
    units = {"a": "µM", "b": "1", "c": "mm"}
    calls = []
    original = render.draw_biomarkers
    monkeypatch.setattr(
        render, "draw_biomarkers", lambda *a, **k: calls.append(a[1]) or original(*a, **k)
    )
    run_fig = plot_biomarkers(df, units, "min", title="run")
    live_fig = render.biomarker_figure(df, units, "min")
    painted = render.BiomarkerPainter().paint(df, units, "min")
    assert len(calls) == 3 and all(c is df for c in calls)

    def panels(fig):
        return [
            (ax.get_title(), ax.get_xlabel(), *(ln.get_xydata().tolist() for ln in ax.get_lines()))
            for ax in fig.axes
            if ax.get_visible()
        ]

    assert panels(run_fig) == panels(live_fig) == panels(painted)
    titles = [p[0] for p in panels(run_fig)]
    assert titles == ["a (µM)", "b (1)", "c (mm)"]
    np.testing.assert_allclose(run_fig.axes[0].get_lines()[0].get_xydata(), np.c_[t, t**2])
    # The lowest panel of each column carries the time axis label (c below a, b alone).
    assert [p[1] for p in panels(run_fig)] == ["", "time (min)", "time (min)"]


# ---------------------------------------------------------------- the live page's tissue view
def _png_close(a_png, b_png):
    a = np.asarray(Image.open(io.BytesIO(a_png)).convert("RGB"), dtype=int)
    b = np.asarray(Image.open(io.BytesIO(b_png)).convert("RGB"), dtype=int)
    return a.shape == b.shape and np.mean(np.abs(a - b) > 0) < 0.001


def _live(model):
    model.tick, model.schedule = 0, SimpleNamespace(n_ticks=10)
    return model


def test_live_view_slices_a_3d_model_at_the_chosen_plane_and_index():
    solara = pytest.importorskip("solara")
    import ipyvuetify as v
    import ipywidgets as w

    from biohybrid.viz.app import TissueView

    m = _live(_volume_model())
    _, rc = solara.render(TissueView(m, 0), handle_error=False)
    try:
        slider = rc.find(v.Slider).widget
        # The x-y plane through the centre (2, 2, 1) first: z index 1 of 0..2.
        assert (slider.label, slider.min, slider.max, slider.v_model) == ("z index", 0, 2, 1)
        rc.find(v.Select, label="Slice").widget.v_model = "x-z"
        slider = rc.find(v.Slider).widget
        assert (slider.label, slider.max, slider.v_model) == ("y index", 3, 2)
        slider.v_model = 3
        shown = rc.find(w.Image).widget.value
        plane = capture(m, point=(2, 3, 1)).section("x-z")
        np.testing.assert_array_equal(
            plane.species["ca"], _code(np.arange(5), 3, np.arange(3)[:, None])
        )
        fresh = tissue_view_figure(plane, "ca", "signal", [], access.units(m), "s")
        assert _png_close(shown, figure_png(fresh))
    finally:
        rc.close()


def test_live_view_grows_a_kymograph_of_a_1d_model():
    solara = pytest.importorskip("solara")
    import ipywidgets as w

    from biohybrid.viz.app import TissueView

    m = _live(FakeModel((N_SITES,), H))
    frames, rc = [], None
    try:
        for tick in range(3):
            m.set_cells("ca", np.where(np.arange(N_SITES) == 10 + 5 * tick, 1.0, 0.0))
            m.t, m.tick = DT * tick, tick
            frames.append(capture(m))
            if rc is None:
                _, rc = solara.render(TissueView(m, tick), handle_error=False)
            else:
                rc.render(TissueView(m, tick))
        fresh = kymograph_view_figure(frames, "ca", "signal", [], access.units(m), "s")
        assert _png_close(rc.find(w.Image).widget.value, figure_png(fresh))
    finally:
        if rc is not None:
            rc.close()
