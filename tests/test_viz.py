"""Run figures and the viz adapter: frames, colour scales, GIF pixels, parameter inputs, CLI.

Expected values are exact by construction (site indexing ``s = i + nx * j``, palette index
ranges, declared parameter bounds), so each test can fail on a wrong orientation, colour or
default.
"""

from __future__ import annotations

import io
import socket
import sys

import numpy as np
import pytest
from PIL import Image

from biohybrid.errors import UserError
from biohybrid.runner import run
from biohybrid.scenario import load_scenario
from biohybrid.viz.adapter import config_env, load_config, slider_range, user_params
from biohybrid.viz.colors import color_limits
from biohybrid.viz.frames import FrameRecorder, GridFrame, capture, site_image, stride_for
from biohybrid.viz.outputs import animation_gif, display_species, pick_frames
from biohybrid.viz.render import (
    PAL_CELLS,
    PAL_EMPTY,
    PAL_UNDER,
    BiomarkerPainter,
    TissuePainter,
    biomarker_figure,
    figure_png,
    gif_palette,
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
