"""Intercellular Ca²⁺ waves in an astrocyte network (and the clamped Li–Rinzel cell).

Four scales:

* intracellular: Li–Rinzel Ca²⁺/IP3R dynamics with De Pittà IP3 metabolism, three species
  per cell (:mod:`.li_rinzel`), integrated by the engine's stepper;
* cell to cell: IP3 diffuses through gap junctions between grid neighbours, a linear graph
  Laplacian (Höfer et al. 2002) applied as its own implicit (backward Euler) step, factorised
  once with SuperLU (Lie operator splitting with the reaction step);
* tissue: extracellular ATP (FiPy) diffuses and is hydrolysed by ectonucleotidases; cells
  release ATP by a Ca²⁺-dependent Hill rule and sense the local ATP through P2Y/PLCβ;
* organ: activated fraction, wave-front radius, arrival time of every cell, wave speed and
  range.

Two modes (parameter ``mode``):

* ``"network"``: the wave model; one stimulated cell in the centre of the grid receives an
  imposed IP3 production ``stim_ip3_rate`` for ``stim_duration``;
* ``"li-rinzel"``: every cell is an isolated Li–Rinzel cell with IP3 clamped at ``ip3``,
  no fields (use ``nx = ny = 1``).

References:
    Li Y-X, Rinzel J (1994) J Theor Biol 166:461-473.
    De Pittà M et al. (2009) J Biol Phys 35:383-411.
    Höfer T, Venance L, Giaume C (2002) Control and plasticity of intercellular calcium
    waves in astrocytes: a modeling approach. J Neurosci 22:4850-4859.
    Lallouette J, De Pittà M, Ben-Jacob E, Berry H (2014) Sparse short-distance connections
    enhance calcium wave propagation in a 3D model of astrocyte networks. Front Comput
    Neurosci 8:45.
    Bennett MR, Farnell L, Gibson WG (2005) A quantitative model of purinergic junctional
    transmission of calcium waves in astrocyte networks. Biophys J 89:2235-2250.
    Charles AC, Merrill JE, Dirksen ER, Sanderson MJ (1991) Intercellular signaling in glial
    cells: calcium waves and oscillations in response to mechanical stimulation and
    glutamate. Neuron 6:983-992.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import NDArray
from scipy.integrate import solve_ivp

from biohybrid.figures import save_figure
from biohybrid.intracellular import Named, OdeSystem
from biohybrid.io import atomic_write_bytes
from biohybrid.model import Coupling, HybridModel
from biohybrid.models.astrocyte.li_rinzel import SYSTEM_PARAMETERS, make_system, rhs
from biohybrid.models.astrocyte.readout import (
    crossing_times,
    front_radius,
    oscillation_statistics,
    wave_statistics,
)
from biohybrid.organ import Biomarker
from biohybrid.params import Param, ParameterSet
from biohybrid.populations import Cells
from biohybrid.stages import Stage
from biohybrid.tissue import FieldSpec

HOFER02 = "Höfer, Venance & Giaume 2002 J Neurosci 22:4850"
BENNETT05 = "Bennett, Farnell & Gibson 2005 Biophys J 89:2235"

PARAMETERS = ParameterSet(
    {
        "mode": Param(
            "network",
            "-",
            "'network': wave model; 'li-rinzel': isolated cells with IP3 clamped at ip3",
            kind=str,
            choices=("network", "li-rinzel"),
        ),
        "ip3": Param(
            0.5,
            "µM",
            "Clamped IP3 in 'li-rinzel' mode (oscillates for ~0.36-0.64 µM)",
            ge=0,
            le=100,
            source="Li & Rinzel 1994 (window computed in README)",
        ),
        **SYSTEM_PARAMETERS,
        "k_gj": Param(
            1.0,
            "1/s",
            "Gap-junction IP3 exchange rate per junction (linear coupling as in Höfer 2002;"
            " Lallouette 2014's nonlinear F = 2 µM/s over I_θ = 0.3 µM is ≈ 3/s); 0 blocks",
            ge=0,
            source=HOFER02 + "; Lallouette et al. 2014 Front Comput Neurosci 8:45;"
            " value calibrated to wave range, see README",
        ),
        "atp_diffusion": Param(
            300.0,
            "µm²/s",
            "Extracellular ATP diffusion coefficient",
            ge=0,
            source=BENNETT05 + "; Stamatakis & Mantzaris 2006 Biophys J 91",
        ),
        "atp_hydrolysis": Param(
            0.2,
            "1/s",
            "First-order ATP hydrolysis by ectonucleotidases (raise for apyrase)",
            ge=0,
            source="Iacobas et al. 2006 Biophys J 90:24 (ecto-ATPase); calibrated, see README",
        ),
        "atp_release": Param(
            50.0,
            "µM·µm²/s",
            "Maximal Ca²⁺-dependent ATP release per cell (amount per time on the 2-D sheet;"
            " 50 µM·µm²/s = 0.125 µM/s over a 20 µm × 20 µm cell)",
            ge=0,
            source="calibrated to wave range (regenerative release: " + BENNETT05 + ")",
        ),
        "k_release": Param(
            0.5,
            "µM",
            "Cytosolic Ca²⁺ giving half-maximal ATP release",
            gt=0,
            source="calibrated; release rises with Ca²⁺ above rest (" + BENNETT05 + ")",
        ),
        "n_release": Param(4.0, "1", "Hill coefficient of Ca²⁺-dependent ATP release", gt=0),
        "ca_threshold": Param(
            0.3,
            "µM",
            "Ca²⁺ above which a cell counts as activated (rest ≈ 0.07 µM, spikes ≈ 0.5-1 µM)",
            gt=0,
        ),
        "stim_ip3_rate": Param(
            2.0,
            "µM/s",
            "Imposed IP3 production in the stimulated cell(s) (mechanical stimulation)",
            ge=0,
            source="Charles et al. 1991 Neuron 6:983 (single-cell mechanical stimulus)",
        ),
        "stim_atp_release": Param(
            50000.0,
            "µM·µm²/s",
            "ATP released by each stimulated cell during the stimulus (point source)",
            ge=0,
            source="Guthrie et al. 1999 J Neurosci 19:520 (ATP release from stimulated cells);"
            " amount calibrated, see README",
        ),
        "stim_duration": Param(2.0, "s", "Duration of the stimulus", ge=0),
        "stim_radius": Param(
            0.0, "sites", "Cells within this grid distance of the centre are stimulated", ge=0
        ),
    },
    title="model 'astrocyte'",
)


def _release(C: NDArray[np.float64], p: Mapping[str, Any]) -> NDArray[np.float64]:
    """Ca²⁺-dependent ATP release per cell, µM·µm²/s (Hill function of cytosolic Ca²⁺)."""
    Cn = np.maximum(C, 0.0) ** p["n_release"]
    return p["atp_release"] * Cn / (Cn + p["k_release"] ** p["n_release"])


def resting_state(
    params: Mapping[str, Any], network: bool, area: float = 400.0
) -> tuple[NDArray[np.float64], float]:
    """The uniform resting state of an unstimulated cell (and its ATP level).

    First relaxes one cell without ATP for 3000 s, then adds its own ATP balance
    ``dA/dt = release(C)/area - k_hyd A`` (the uniform state of the network) for another
    3000 s, so the low (resting) branch is found when the feedback is bistable.

    Args:
        params: Resolved model parameters.
        network: Whether ATP feedback is present.
        area: Site area ``dx²``, µm² (release is an amount per cell).

    Returns:
        ``(y_rest, atp_rest)``: the state ``(ca, h, ip3)`` (shape ``(3,)``) and the ATP in µM.
    """
    p = dict(params)
    p.update(clamp=0.0, j_stim=0.0)
    k_hyd = p["atp_hydrolysis"]

    def f(t: float, z: NDArray, fb: bool) -> NDArray:
        d = rhs(t, z[None, :3], p, np.array([[z[3]]]))[0]
        da = _release(z[:1], p)[0] / area - k_hyd * z[3] if fb else 0.0
        return np.append(d, da)

    z = np.array([0.07, 0.8, 0.1, 0.0])
    for fb in (False, True) if network else (False,):
        sol = solve_ivp(f, (0.0, 3000.0), z, method="LSODA", rtol=1e-9, atol=1e-12, args=(fb,))
        z = sol.y[:, -1]
    return z[:3].copy(), float(z[3])


class AstrocyteModel(HybridModel):
    """Astrocyte network with intercellular Ca²⁺ waves (see the module docstring)."""

    name = "astrocyte"
    description = (
        "Intercellular Ca²⁺ waves: Li–Rinzel astrocytes, gap-junction IP3, extracellular ATP"
    )
    time_units = "s"
    parameters = PARAMETERS
    neighbourhood = "moore"
    run_defaults: ClassVar[dict[str, Any]] = {
        "t_end": 60.0,
        "dt_output": 0.5,
        "dt_ode": 0.25,
        "dt_field": 0.25,
        "dt_behaviour": 0.5,
        "nx": 50,
        "ny": 50,
        "dx": 20.0,
        "rtol": 1e-5,
        "atol": 1e-8,
    }
    biomarkers = (
        Biomarker("ca_mean", "µM", "Mean cytosolic Ca²⁺ over cells"),
        Biomarker("ca_max", "µM", "Largest cytosolic Ca²⁺"),
        Biomarker("ip3_mean", "µM", "Mean cytosolic IP3"),
        Biomarker("h_mean", "1", "Mean IP3R gate h"),
        Biomarker("activated_fraction", "1", "Share of cells with Ca²⁺ > ca_threshold now"),
        Biomarker("recruited_fraction", "1", "Share of cells activated at least once so far"),
        Biomarker("front_radius", "µm", "Furthest activated cell from the stimulus so far"),
        Biomarker("atp_mean", "µM", "Mean extracellular ATP"),
        Biomarker("atp_max", "µM", "Largest extracellular ATP"),
    )

    # ------------------------------------------------------------------ contract
    @property
    def network(self) -> bool:
        """Whether the model runs in wave (network) mode."""
        return self.params["mode"] == "network"

    def prepare(self) -> None:
        """The uniform resting state (and its ATP level) every cell starts from."""
        if self.network:
            area = self.run["dx"] ** 2  # release is per cell on the 2-D sheet
            self._rest, self._atp_rest = resting_state(self.params, network=True, area=area)
        else:
            self._rest = np.array([0.1, 0.7, self.params["ip3"]])
            self._atp_rest = 0.0

    def build_system(self, population: str) -> OdeSystem:
        """The per-cell Ca²⁺/h/IP3 system; reads ATP only in network mode."""
        return make_system(with_atp=self.network)

    def build_couplings(self) -> Sequence[Coupling]:
        """Gap-junction IP3 exchange between Moore neighbours (Höfer et al. 2002).

        Backward Euler ``(Id + dt k_gj L) I' = I`` with ``L`` the graph Laplacian of the
        live cells: conservative and unconditionally stable; none in 'li-rinzel' mode.
        """
        if not self.network:
            return []
        return [
            Coupling(
                population="cell",
                species="ip3",
                conductance=self.params["k_gj"],
                neighbourhood="moore",
                scheme="backward-euler",
                clock="dt_ode",
            )
        ]

    def build_stages(self) -> Sequence[Stage]:
        """Record Ca²⁺ crossings at each ODE step's start, then the engine's stages."""
        track = Stage("track", "dt_ode", lambda m, t0, dt: m._track(), role="start")
        return [track, *super().build_stages()]

    def build_fields(self) -> Sequence[FieldSpec]:
        """Extracellular ATP in network mode (no-flux boundaries); none otherwise."""
        if not self.network:
            return []
        return [
            FieldSpec(
                "atp",
                diffusion=self.params["atp_diffusion"],
                decay=self.params["atp_hydrolysis"],
                units="µM",
                initial=self._atp_rest,
                description="Extracellular ATP",
            )
        ]

    def setup(self) -> None:
        """One astrocyte per site at rest; the centre cell(s) are the stimulated ones."""
        for site in range(self.lattice.n_sites):
            self.add_cell(site, state=self._rest, kind="astrocyte")
        rows = self.table.live_rows()
        sites = self.table.attrs["site"][rows]
        ci, cj = self.nx // 2, self.ny // 2
        gi, gj = sites % self.nx, sites // self.nx
        self._centre = np.array([(ci + 0.5) * self.dx, (cj + 0.5) * self.dx])
        cap = self.table.capacity
        self._stimulated = np.zeros(cap, dtype=bool)
        if self.network:
            r = self.params["stim_radius"]
            self._stimulated[rows] = (gi - ci) ** 2 + (gj - cj) ** 2 <= r * r
        self._distance = np.zeros(cap)
        self._distance[rows] = np.linalg.norm(self.site_positions(sites) - self._centre, axis=1)
        self._t_act = np.full(cap, np.nan)
        self._c_prev = np.full(cap, np.nan)
        self._c_prev[rows] = self.table.species_values("ca", rows)
        self._t_prev = 0.0

    def cell_params(self, cells: Cells, rows: NDArray[np.int64]) -> Mapping[str, Any]:
        """Model parameters plus the per-cell IP3 clamp and stimulus (shape ``(N,)``)."""
        p = dict(self.params)
        p["clamp"] = 0.0 if self.network else 1.0
        on = self._stim_on()
        p["j_stim"] = self._stimulated[rows] * self.params["stim_ip3_rate"] if on else 0.0
        return p

    def cell_outputs(
        self, cells: Cells, rows: NDArray[np.int64], y: Named
    ) -> Mapping[str, tuple[NDArray, NDArray | None]]:
        """Ca²⁺-dependent ATP release per cell, µM·µm²/s (the layer divides by dx²).

        Stimulated cells add ``stim_atp_release`` while the stimulus lasts.
        """
        sec = _release(y["ca"], self.params)
        if self._stim_on():
            sec = sec + self._stimulated[rows] * self.params["stim_atp_release"]
        return {"atp": (sec, None)}

    def _stim_on(self) -> bool:
        """Whether the stimulus is on at the current time (start of the step)."""
        return self.network and self.t < self.params["stim_duration"] - 1e-12

    # ------------------------------------------------------------------ readouts
    def _track(self) -> None:
        """Record first upward crossings of ``ca_threshold`` since the last check."""
        if self.t <= self._t_prev:
            return
        rows = self.table.live_rows()
        c = self.table.species_values("ca", rows)
        tc = crossing_times(
            self._c_prev[rows], c, self._t_prev, self.t, self.params["ca_threshold"]
        )
        new = np.isnan(self._t_act[rows]) & np.isfinite(tc)
        self._t_act[rows[new]] = tc[new]
        self._c_prev[rows] = c
        self._t_prev = self.t

    # ------------------------------------------------------------------ readouts
    def measure(self) -> dict[str, float]:
        """Tissue-level readouts at the current time."""
        self._track()
        rows = self.table.live_rows()
        y = self.population().state(rows)
        c = y["ca"]
        if self.tissue is not None:
            atp = self.tissue.values("atp")
            atp_mean, atp_max = float(atp.mean()), float(atp.max())
        else:
            atp_mean = atp_max = 0.0
        t_act = self._t_act[rows]
        return {
            "ca_mean": float(c.mean()),
            "ca_max": float(c.max()),
            "ip3_mean": float(y["ip3"].mean()),
            "h_mean": float(y["h"].mean()),
            "activated_fraction": float((c > self.params["ca_threshold"]).mean()),
            "recruited_fraction": float(np.isfinite(t_act).mean()),
            "front_radius": front_radius(self._distance[rows], t_act, self.t),
            "atp_mean": atp_mean,
            "atp_max": atp_max,
        }

    def activation_table(self) -> pd.DataFrame:
        """Every cell's position, distance from the stimulus and first activation time."""
        rows = self.table.live_rows()
        sites = self.table.attrs["site"][rows]
        xy = self.site_positions(sites)
        return pd.DataFrame(
            {
                "row": rows,
                "site": sites,
                "x_um": xy[:, 0],
                "y_um": xy[:, 1],
                "distance_um": self._distance[rows],
                "stimulated": self._stimulated[rows],
                "t_activation_s": self._t_act[rows],
            }
        )

    def summary(self) -> dict[str, Any]:
        """Wave statistics (network) or oscillation period/amplitude (li-rinzel)."""
        if not self.network:
            df = self.recorder.frame()
            t = df.index.to_numpy()
            stats = oscillation_statistics(t, df["ca_mean"].to_numpy(), t_from=0.5 * t[-1])
            return {
                "mode": "li-rinzel",
                "ip3_uM": self.params["ip3"],
                "ca_period_s": stats["period"],
                "ca_amplitude_uM": stats["amplitude"],
                "ca_max_uM": stats["c_max"],
                "ca_min_uM": stats["c_min"],
                "n_cycles": stats["n_cycles"],
            }
        rows = self.table.live_rows()
        stats = wave_statistics(self._distance[rows], self._t_act[rows], self._stimulated[rows])
        out: dict[str, Any] = {"mode": "network", "n_cells": int(rows.size)}
        out.update(stats)
        out["ca_threshold_uM"] = self.params["ca_threshold"]
        out["rest_ca_uM"] = float(self._rest[0])
        out["rest_ip3_uM"] = float(self._rest[2])
        out["rest_atp_uM"] = self._atp_rest
        return {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()
        }

    def write_outputs(self, run_dir: Path) -> None:
        """``activation.csv`` and ``figures/arrival_time.png`` (network mode)."""
        if not self.network:
            return
        df = self.activation_table()
        atomic_write_bytes(run_dir / "activation.csv", df.to_csv(index=False).encode())
        rec = df[np.isfinite(df["t_activation_s"]) & ~df["stimulated"]]
        fig = Figure(figsize=(9.5, 4.0), layout="constrained")
        ax1, ax2 = fig.subplots(1, 2)
        ax1.scatter(rec["distance_um"], rec["t_activation_s"], s=6, alpha=0.6)
        stats = self.summary()
        v = stats.get("mean_wave_speed_um_s")
        ax1.set_xlabel("distance from stimulus (µm)")
        ax1.set_ylabel("arrival time (s)")
        ax1.set_title(
            f"{len(rec)} cells recruited; mean speed "
            + (f"{v:.1f} µm/s" if v is not None else "n/a")
        )
        ax1.grid(alpha=0.3)
        img = np.full(self.lattice.n_sites, np.nan)
        img[df["site"].to_numpy()] = df["t_activation_s"].to_numpy()
        img = img.reshape(self.ny, self.nx)
        im = ax2.imshow(img, origin="lower", extent=(0, self.nx * self.dx, 0, self.ny * self.dx))
        fig.colorbar(im, ax=ax2, label="arrival time (s)")
        ax2.set_xlabel("x (µm)")
        ax2.set_ylabel("y (µm)")
        ax2.set_title("activation map (blank: never activated)")
        save_figure(fig, run_dir / "figures" / "arrival_time.png")
