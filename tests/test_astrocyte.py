"""Astrocyte network model: gap-junction operator, rest state, wave speed/range, drug effects.

Sources:
    Charles AC et al. (1991) Neuron 6:983 (mechanically induced glial Ca²⁺ waves; block of
    gap-junctional communication shortens them).
    Höfer T, Venance L, Giaume C (2002) J Neurosci 22:4850 (astrocyte waves: speeds of order
    10-20 µm/s, ranges of a few hundred µm; gap-junction IP3 coupling).
    Guthrie PB et al. (1999) J Neurosci 19:520 (ATP release; apyrase reduces wave extent).
    Bennett MR et al. (2006) Biophys J 91:3560 (velocity and amplitude decline over ~270 µm;
    fewer cells respond further away).
The brief summarises the culture ranges as speeds ~10-30 µm/s and ranges ~100-350 µm.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import biohybrid
from biohybrid.errors import UserError
from biohybrid.models.astrocyte.model import AstrocyteModel

SMALL = {"nx": 31, "ny": 31, "t_end": 30.0}  # 620 µm square, enough for the 60 s waves


def test_gap_junction_step_is_exact_backward_euler_and_conserves_ip3():
    # Two coupled cells: backward Euler shrinks the IP3 difference by 1/(1 + 2 k dt) and
    # keeps the sum (linear gap-junction exchange, Höfer et al. 2002).
    m = AstrocyteModel(
        params={"stim_ip3_rate": 0.0, "stim_atp_release": 0.0, "k_gj": 0.7},
        run={"nx": 2, "ny": 1, "t_end": 1.0},
    )
    rows = m.table.live_rows()
    m.population().set_species("ip3", rows, [1.0, 0.2])
    m.step_coupling("ip3", 0.0, 0.25)  # the declared gap-junction Coupling
    ip3 = m.table.species_values("ip3", rows)
    assert ip3.sum() == pytest.approx(1.2, rel=1e-12)
    assert ip3[0] - ip3[1] == pytest.approx(0.8 / (1 + 2 * 0.7 * 0.25), rel=1e-12)


def test_rest_state_is_stationary_without_stimulus():
    m = AstrocyteModel(
        params={"stim_ip3_rate": 0.0, "stim_atp_release": 0.0},
        run={"nx": 5, "ny": 5, "t_end": 20.0},
    )
    y0 = m.table.live().copy()
    while m.running:
        m.step()
    np.testing.assert_allclose(m.table.live(), y0, atol=1e-5)
    df = m.recorder.frame()
    assert df["recruited_fraction"].max() == 0.0
    # resting Ca²⁺ below the activation threshold, IP3 below the oscillation window
    assert y0[0, 0] < 0.1 and y0[0, 2] < 0.355


@pytest.fixture(scope="module")
def waves():
    out = {}
    for name in ("astrocyte-wave", "astrocyte-wave-gap-junction-block", "astrocyte-wave-apyrase"):
        res = biohybrid.run(name, overrides=SMALL, write=False)
        assert res.ok, res.message
        out[name] = res
    return out


@pytest.mark.slow
def test_wave_speed_and_range_in_published_ranges(waves):
    s = waves["astrocyte-wave"].summary
    # culture waves: ~10-30 µm/s, ranges ~100-350 µm (Charles 1991; Höfer 2002; Bennett 2006)
    assert 10.0 <= s["mean_wave_speed_um_s"] <= 30.0
    assert 100.0 <= s["max_activation_distance_um"] <= 350.0
    assert s["cells_recruited"] >= 20


@pytest.mark.slow
def test_gap_junction_block_and_apyrase_shorten_the_wave(waves):
    ctrl = waves["astrocyte-wave"].summary
    gjb = waves["astrocyte-wave-gap-junction-block"].summary
    apy = waves["astrocyte-wave-apyrase"].summary
    # gap-junction block reduces the range (Charles 1991; Höfer 2002, both pathways)
    assert gjb["max_activation_distance_um"] < 0.8 * ctrl["max_activation_distance_um"]
    assert gjb["cells_recruited"] < ctrl["cells_recruited"]
    # apyrase (ATP hydrolysis up) reduces the range (Guthrie et al. 1999)
    assert apy["max_activation_distance_um"] < 0.8 * ctrl["max_activation_distance_um"]
    assert apy["cells_recruited"] < ctrl["cells_recruited"]


@pytest.mark.slow
def test_wave_readouts_are_consistent(waves):
    df = waves["astrocyte-wave"].biomarkers
    r = df["front_radius"].to_numpy()
    assert np.all(np.diff(r) >= 0)  # the front radius never shrinks
    assert r[-1] == pytest.approx(waves["astrocyte-wave"].summary["max_activation_distance_um"])
    assert df["activated_fraction"].max() > 0
    assert (df["activated_fraction"] <= df["recruited_fraction"] + 1e-12).all()
    assert df["activated_fraction"].iloc[-1] < df["activated_fraction"].max()  # wave passes


def test_run_folder_outputs(tmp_path):
    res = biohybrid.run(
        "astrocyte-wave",
        overrides={"nx": 15, "ny": 15, "t_end": 10.0},
        out=tmp_path / "run",
    )
    assert res.ok, res.message
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for key in ("mean_wave_speed_um_s", "cells_recruited", "max_activation_distance_um"):
        assert key in summary
    act = pd.read_csv(tmp_path / "run" / "activation.csv")
    assert len(act) == 225 and {"distance_um", "t_activation_s"} <= set(act.columns)
    hit = act[act["t_activation_s"].notna() & ~act["stimulated"]]
    # arrival time increases with distance (a propagating wave)
    assert np.corrcoef(hit["distance_um"], hit["t_activation_s"])[0, 1] > 0.8
    assert (tmp_path / "run" / "figures" / "arrival_time.png").stat().st_size > 0


def test_bad_mode_is_a_user_error():
    with pytest.raises(UserError, match="mode"):
        biohybrid.run("astrocyte-wave", overrides={"mode": "hexagonal"}, write=False)
