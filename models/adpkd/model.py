"""ADPKD: from a germline PKD1/PKD2 mutation to total kidney volume over decades.

Scales (see the package README for the equations, parameters and calibration):

* **genetics** (:mod:`.genetics`): every unit of the patch is germline heterozygous; somatic
  second hits arrive with replication (two-hit model); units whose functional polycystin
  falls below a threshold turn cystic;
* **intracellular** (:mod:`.signalling`): Ca²⁺ → cAMP (AC6, PDE1, PDE4, V2R) → PKA → ERK per
  unit, stiff (seconds-minutes) on a year clock, relaxed by L-stable backward-Euler steps;
* **tissue** (FiPy): vasopressin and tolvaptan delivered from the peritubular capillaries
  (V2R occupancy), and a paracrine cyst mitogen (a forskolin-like lipid) secreted by cystic
  units that raises cAMP, proliferation and second-hit risk in its neighbours;
* **cysts** (:mod:`.cysts`): connected clusters of cystic units with a wall (lining cells,
  grown by proliferation) and a lumen (filled by CFTR secretion, bounded by the wall);
* **organ** (:mod:`.organ`): scaled to the kidney pair: TKV, htTKV, cyst volume and count,
  annual growth, Mayo class.

Time is age in years. The run alternates short bursts of the full model (micro steps of
``dt_ode``) with coarse projections of the slow variables (each unit's wall cells and lumen,
in log space) to the next output time (:mod:`biohybrid.projective`); ``projective = false``
runs every micro step instead (brute force).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from biohybrid.errors import UserError
from biohybrid.intracellular import Named, OdeSystem
from biohybrid.model import HybridModel
from biohybrid.models.adpkd import cysts, genetics, organ
from biohybrid.models.adpkd.signalling import (
    SYSTEM_PARAMETERS,
    make_system,
    quasi_steady_state,
)
from biohybrid.organ import Biomarker
from biohybrid.params import Param, ParameterSet
from biohybrid.populations import Cells
from biohybrid.projective import ProjectiveDriver
from biohybrid.tissue import FieldSpec

_CRISP = "Grantham et al. 2006 NEJM 354:2122 (CRISP)"
_TEMPO = "Torres et al. 2012 NEJM 367:2407 (TEMPO 3:4)"
_CAL = "calibrated to CRISP TKV at age ~32 and growth 5.3 %/yr (Grantham 2006)"

PARAMETERS = ParameterSet(
    {
        **{k: v for k, v in SYSTEM_PARAMETERS.items() if k != "pc"},
        # --- genetics
        "germline": Param(
            "pkd1",
            "1",
            "Germline genotype of every unit",
            kind=str,
            choices=genetics.GERMLINE,
            source="Harris & Torres 2009 Annu Rev Med (PKD1 ~85%, PKD2 ~15% of ADPKD)",
        ),
        "pc_threshold": Param(
            0.3,
            "1",
            "Functional polycystin below which a unit turns cystic",
            gt=0,
            lt=1,
            source="Lantinga-van Leeuwen et al. 2004 HMG 13:3069 (cysts at ~20% Pkd1)",
        ),
        "pc_cv": Param(
            0.1,
            "1",
            "Coefficient of variation of per-unit polycystin expression",
            ge=0,
            source="Rossetti et al. 2009 Kidney Int 75:848 (dosage-dependent cystogenesis)",
        ),
        "n_cells_unit": Param(
            3000.0,
            "cells",
            "Epithelial cells per unit (one nephron's tubule)",
            gt=0,
            source="order of a human nephron's tubular epithelium (~10^3-10^4 cells)",
        ),
        "u_hit_pkd1": Param(
            3.0e-7,
            "1/division",
            "Probability per division of losing the remaining PKD1 allele",
            ge=0,
            source=_CAL + "; two-hit model (Qian et al. 1996 Cell 87:979)",
        ),
        "u_hit_pkd2": Param(
            1.8e-7,
            "1/division",
            "Probability per division of losing the remaining PKD2 allele",
            ge=0,
            source="calibrated to PKD1/PKD2 TKV ratio 1094/668 mL (Harris et al. 2006 JASN)",
        ),
        "initial_cysts": Param(
            0, "units", "Units made cystic at t = 0 (for tests and experiments)", ge=0, kind=int
        ),
        # --- phenotype map
        "J_max": Param(
            600.0,
            "µm/yr",
            "Maximal net CFTR fluid secretion per apical area",
            ge=0,
            source="Sullivan, Wallace & Grantham 1998 Physiol Rev 78:1165 (in vitro"
            " forskolin-stimulated ~1 µL/cm²/h = 8.8e4 µm/yr; in vivo net a few % of it)",
        ),
        "K_cftr": Param(
            0.6,
            "1",
            "PKA activity giving half-maximal CFTR secretion",
            gt=0,
            source="Magenheimer et al. 2006 JASN 17:3424 (cAMP/CFTR-dependent dilation)",
        ),
        "J_abs": Param(
            100.0,
            "µm/yr",
            "Passive fluid reabsorption across the cyst wall",
            ge=0,
            source="Sullivan et al. 1998 (cysts switch from absorption to secretion)",
        ),
        "p_max": Param(
            3.0,
            "1/yr",
            "Proliferation per cell at full ERK activity and birth competence",
            ge=0,
            source=_CAL + "; Yamaguchi et al. 2004 JBC (cAMP-ERK mitogenesis)",
        ),
        "c_adult": Param(
            0.031,
            "1",
            "Adult proliferative competence relative to birth",
            gt=0,
            le=1,
            source="Piontek et al. 2007 Nat Med 13:1490 (developmental switch)",
        ),
        "tau_dev": Param(
            5.57,
            "yr",
            "Time constant of the decline of proliferative competence",
            gt=0,
            source="Piontek et al. 2007 (switch at kidney maturation); " + _CAL,
        ),
        "apoptosis": Param(
            0.015,
            "1/yr",
            "Apoptosis rate of cyst-lining cells",
            ge=0,
            source="Lanoix et al. 1996 Oncogene 13:1153 (apoptosis in ADPKD cyst walls)",
        ),
        "a_cell": Param(
            150.0,
            "µm²",
            "Apical area of one lining cell",
            gt=0,
            source="tubular/cyst epithelial cells ~10-15 µm across",
        ),
        "lining0": Param(
            50.0,
            "cells",
            "Wall cells of a newly formed cyst (dilated tubule segment)",
            gt=0,
            source="focal clonal dilation of a tubule segment (Qian et al. 1996)",
        ),
        # --- tissue fields
        "avp_plasma": Param(
            2.0,
            "pM",
            "Plasma vasopressin",
            ge=0,
            source="normal plasma AVP ~1-5 pg/mL ≈ 1-5 pM (Robertson 1987)",
        ),
        "tolvaptan_nm": Param(
            10.0,
            "nM",
            "Free plasma tolvaptan during treatment",
            ge=0,
            source="assumed: µM-range total plasma levels, >98% protein bound (tolvaptan label);"
            " calibrated with a_0/a_v2r to TEMPO 3:4",
        ),
        "tolvaptan_start": Param(
            1000.0,
            "yr",
            "Age at which tolvaptan starts (beyond the horizon = never)",
            ge=0,
            source=_TEMPO + ": mean baseline age 39",
        ),
        "capillary_exchange": Param(
            5.0e5,
            "1/yr",
            "Exchange rate of interstitium with plasma (per site)",
            gt=0,
            source="peritubular capillary equilibration within ~1 min",
        ),
        "receptor_uptake": Param(
            5.0e4,
            "1/yr",
            "Receptor-mediated internalisation of AVP/tolvaptan per unit",
            ge=0,
            source="V2R internalisation on a ~10 min scale",
        ),
        "D_hormone": Param(
            3.0e9,
            "µm²/yr",
            "Interstitial diffusion of AVP and tolvaptan",
            ge=0,
            source="small peptide/drug ~1e-6 cm²/s",
        ),
        "s_mitogen": Param(
            4.0e9,
            "a.u.·µm²/yr",
            "Mitogen secretion per cystic unit at full PKA activity",
            ge=0,
            source="Putnam et al. 2007 JASN 18:934 (cyst-fluid forskolin-like lipid)",
        ),
        "D_mitogen": Param(
            3.0e8, "µm²/yr", "Diffusion of the mitogen", ge=0, source="lipid in interstitium"
        ),
        "decay_mitogen": Param(
            2.0e5,
            "1/yr",
            "Decay/clearance of the mitogen",
            ge=0,
            source="paracrine range of a few cell diameters (Leonhard et al. 2016 JASN"
            " 27:1208, cystic snowball effect)",
        ),
        # --- organ
        "nephrons_per_kidney": Param(
            1.0e6,
            "nephrons",
            "Nephrons per kidney (one unit = one nephron)",
            gt=0,
            source="Bertram et al. 2011 Pediatr Nephrol 26:1529 (~0.9e6 mean)",
        ),
        "httkv_parenchyma": Param(
            150.0,
            "mL/m",
            "Height-adjusted volume of the non-cystic kidney pair",
            gt=0,
            source="Irazabal et al. 2015 JASN 26:160 (150 mL/m assumed at birth)",
        ),
        "height_m": Param(1.75, "m", "Adult height", gt=0),
        "tau_height": Param(6.0, "yr", "Time constant of height growth", gt=0),
        # --- outputs and numerics
        "window_start": Param(
            32.0, "yr", "Start age of the growth-rate window", ge=0, source=_CRISP + ": age 32"
        ),
        "window_end": Param(35.0, "yr", "End age of the growth-rate window", gt=0),
        "projective": Param(True, "1", "Coarse projective integration between outputs", kind=bool),
        "projective_order": Param(
            3,
            "1",
            "Order of the projective step (slope polynomial through the last bursts)",
            ge=1,
            le=3,
            kind=int,
            source="Lee & Gear 2007 J Comput Appl Math 201:258 (projective Adams-Bashforth)",
        ),
        "burst_steps": Param(
            4, "steps", "Micro steps per burst of projective integration", ge=2, kind=int
        ),
        "integrator": Param(
            "implicit-euler",
            "1",
            "Intracellular integrator: the model's vectorised backward Euler, or the engine's",
            kind=str,
            choices=("implicit-euler", "engine"),
        ),
    },
    title="model 'adpkd'",
)

_GENE = {"pkd1": "pc1", "pkd2": "pc2", "none": "pc1"}


class AdpkdModel(HybridModel):
    """ADPKD cyst growth from polycystin loss to total kidney volume (module docstring)."""

    name = "adpkd"
    description = "ADPKD: polycystin loss → Ca²⁺/cAMP → cysts → total kidney volume over decades"
    time_units = "yr"
    parameters = PARAMETERS
    run_defaults: ClassVar[dict[str, Any]] = {
        "t_end": 60.0,
        "dt_output": 1.0,
        "dt_ode": 0.05,
        "dt_field": 0.05,
        "dt_behaviour": 0.05,
        "nx": 100,
        "ny": 100,
        "dx": 20.0,
        "rtol": 1e-6,
        "atol": 1e-9,
    }
    biomarkers = (
        Biomarker("tkv_ml", "mL", "Total kidney volume of the kidney pair"),
        Biomarker("httkv_ml_m", "mL/m", "Height-adjusted TKV"),
        Biomarker("cyst_volume_ml", "mL", "Total cyst volume of the kidney pair"),
        Biomarker("cyst_count", "cysts", "Cysts in the kidney pair (patch count × scale)"),
        Biomarker("cysts_patch", "cysts", "Cysts in the simulated patch"),
        Biomarker("cystic_fraction", "1", "Fraction of units that are cystic"),
        Biomarker("tkv_growth_pct", "%/yr", "Annual TKV growth since the previous output"),
        Biomarker("mayo_class", "1", "Mayo imaging class 1..5 = 1A..1E (0: age < 15)"),
        Biomarker("ca_cystic_um", "µM", "Mean Ca2+ of cystic units (NaN-free: 0 if none)"),
        Biomarker("camp_cystic_um", "µM", "Mean cAMP of cystic units (0 if none)"),
        Biomarker("v2r_occupancy", "1", "Mean V2 receptor occupancy"),
        Biomarker("mitogen_mean", "a.u.", "Mean paracrine mitogen"),
    )

    def prepare(self) -> None:
        """Check the growth window; the previous TKV starts unknown."""
        p = self.params
        if p["window_end"] <= p["window_start"]:
            raise UserError(
                f"window_end ({p['window_end']:g}) must be greater than window_start"
                f" ({p['window_start']:g})"
            )
        self._prev_tkv: float | None = None
        self._n_cysts = 0

    def stepper_method(self, cells: Cells) -> str | None:
        """The model's backward-Euler relaxation unless ``integrator = "engine"``."""
        return "implicit-euler" if self.params["integrator"] == "implicit-euler" else None

    def build_driver(self) -> ProjectiveDriver | None:
        """Bursts and coarse projections of walls and lumens (``projective = true``)."""
        p, run = self.params, self.run
        if not p["projective"]:
            return None
        if not run["dt_ode"] == run["dt_field"] == run["dt_behaviour"]:
            raise UserError(
                "projective integration needs dt_ode = dt_field = dt_behaviour (the micro"
                f" step); got {run['dt_ode']:g}, {run['dt_field']:g},"
                f" {run['dt_behaviour']:g}. Set them equal or set projective=false."
            )
        return ProjectiveDriver(
            restrict=self._restrict,
            lift=self._lift,
            n_burst=p["burst_steps"],
            log=True,
            order=p["projective_order"],
            max_order=self._max_order,
            on_burst=self._start_burst,
        )

    # ------------------------------------------------------------------ contract
    def build_system(self, population: str) -> OdeSystem:
        """The per-unit Ca²⁺-cAMP-PKA-ERK system."""
        return make_system()

    def build_fields(self) -> Sequence[FieldSpec]:
        """Vasopressin, tolvaptan (from capillaries) and the cyst mitogen (from cysts)."""
        p = self.params
        plasma = p["capillary_exchange"] / (p["capillary_exchange"] + p["receptor_uptake"])
        return [
            FieldSpec(
                "avp",
                diffusion=p["D_hormone"],
                units="pM",
                initial=p["avp_plasma"] * plasma,
                description="Interstitial vasopressin",
            ),
            FieldSpec(
                "tolvaptan",
                diffusion=p["D_hormone"],
                units="nM",
                description="Interstitial free tolvaptan",
            ),
            FieldSpec(
                "mitogen",
                diffusion=p["D_mitogen"],
                decay=p["decay_mitogen"],
                units="a.u.",
                description="Paracrine cyst mitogen (forskolin-like lipid)",
            ),
        ]

    def setup(self) -> None:
        """Fill the grid with germline-heterozygous units at their relaxed state."""
        p = self.params
        table = self.table
        for name, fill in (
            ("pc1", 1.0),
            ("pc2", 1.0),
            ("expr", 1.0),
            ("cystic", 0.0),
            ("lining", 0.0),
            ("lumen", 0.0),
            ("floor", 0.0),
            ("prolif", 0.0),
        ):
            table.add_attr(name, fill)
        n = self.lattice.n_sites
        pc1, pc2 = genetics.germline_dosage(p["germline"])
        expr = genetics.expression_factor(self.rng, n, p["pc_cv"])
        y0 = self.system.initial_state()
        for s in range(n):
            self.add_cell(s, y0, kind="tubule", pc1=pc1, pc2=pc2, expr=expr[s])
        rows = table.live_rows()
        if p["initial_cysts"]:
            k = min(p["initial_cysts"], n)
            hit = self.rng.choice(rows, size=k, replace=False)
            table.attrs[_GENE[p["germline"]]][hit] = 0.0
        self._switch(rows)
        self._constrain(rows)

    def cell_params(self, cells: Cells, rows: NDArray[np.int64]) -> Mapping[str, Any]:
        """Model parameters plus each unit's functional polycystin ``pc``."""
        a = self.table.attrs
        pc = genetics.functional_polycystin(a["pc1"][rows], a["pc2"][rows], a["expr"][rows])
        return {**self.params, "pc": pc}

    def _drug(self, age: float) -> float:
        p = self.params
        return p["tolvaptan_nm"] if age >= p["tolvaptan_start"] else 0.0

    def cell_outputs(
        self, cells: Cells, rows: NDArray[np.int64], y: Named
    ) -> Mapping[str, tuple[NDArray, NDArray]]:
        """Capillary delivery of AVP/tolvaptan; mitogen secretion by cystic units.

        Secretion is an amount per cell per time (concentration × µm² / yr), the units of
        :meth:`biohybrid.tissue.TissueLayer.set_coupling`; capillary delivery per site is
        ``k_ex · c_plasma · dx²`` with uptake ``k_ex + k_receptor`` (so the site relaxes to
        ``c_plasma k_ex / (k_ex + k_receptor)``).
        """
        p = self.params
        assert self.tissue is not None
        area = self.tissue.site_volume
        kex = p["capillary_exchange"]
        uptake = np.full(rows.size, kex + p["receptor_uptake"])
        avp = np.full(rows.size, kex * p["avp_plasma"] * area)
        tol = np.full(rows.size, kex * self._drug(self.t) * area)
        cystic = self.table.attrs["cystic"][rows] > 0
        mit = np.where(cystic, p["s_mitogen"] * np.clip(y["pka"], 0.0, None), 0.0)
        return {"avp": (avp, uptake), "tolvaptan": (tol, uptake), "mitogen": (mit, None)}

    def behaviour(
        self, cells: Cells, rows: NDArray[np.int64], y: Named, dt: float
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Grow walls and lumens of cystic units, draw second hits, switch phenotypes.

        No unit divides or dies on the grid (one unit = one nephron); growth happens in the
        units' slow variables ``lining`` and ``lumen``.
        """
        p, a = self.params, self.table.attrs
        # competence at the middle of the step: the exponential wall update is then second
        # order in dt for the age-dependent proliferation
        prolif = cysts.proliferation(y["erk"], self.t - 0.5 * dt, p)
        a["prolif"][rows] = prolif
        cystic = a["cystic"][rows] > 0
        cr = rows[cystic]
        if cr.size:
            lining, lumen = cysts.advance_cysts(
                a["lining"][cr],
                a["lumen"][cr],
                prolif[cystic],
                cysts.fluid_secretion(y["pka"][cystic], p),
                dt,
                p,
            )
            a["lining"][cr], a["lumen"][cr] = lining, lumen
        self._hits(rows[~cystic], dt)
        self._switch(rows)
        self._constrain(rows)
        none = np.zeros(rows.size, dtype=bool)
        return none, none

    # ------------------------------------------------------------------ genetics helpers
    def _hits(self, rows: NDArray[np.int64], dt: float, scale: float = 1.0) -> None:
        p, a = self.params, self.table.attrs
        if rows.size == 0:
            return
        u = p["u_hit_pkd2"] if p["germline"] == "pkd2" else p["u_hit_pkd1"]
        hazard = scale * genetics.second_hit_hazard(a["prolif"][rows], u, p["n_cells_unit"])
        hit = rows[genetics.draw_hits(self.rng, hazard, dt)]
        gene = a[_GENE[p["germline"]]]
        gene[hit] = np.maximum(gene[hit] - 0.5, 0.0)

    def _switch(self, rows: NDArray[np.int64]) -> NDArray[np.int64]:
        """Turn units below the polycystin threshold cystic; returns the new cystic rows."""
        p, a = self.params, self.table.attrs
        pc = genetics.functional_polycystin(a["pc1"][rows], a["pc2"][rows], a["expr"][rows])
        new = rows[(pc < p["pc_threshold"]) & (a["cystic"][rows] == 0)]
        if new.size:
            v0 = cysts.wall_volume_ml(np.array([p["lining0"]]), p["a_cell"])[0]
            a["cystic"][new] = 1.0
            a["lining"][new] = p["lining0"]
            a["lumen"][new] = v0
            a["floor"][new] = v0
        return new

    def _lift_new_cysts(self, new: NDArray[np.int64], delta: float) -> None:
        """Lift units that turned cystic during a projection of length ``delta``.

        Their hits fell at uniformly distributed times within the interval (constant
        hazard), so each is given its signalling quasi-steady state at the local fields and
        the wall growth since its hit: ``lining0 · exp((p − d) · age_of_cyst)``.
        """
        if new.size == 0 or delta <= 0:
            return
        p, a = self.params, self.table.attrs
        assert self.tissue is not None
        sites = a["site"][new]
        pc = genetics.functional_polycystin(a["pc1"][new], a["pc2"][new], a["expr"][new])
        y = quasi_steady_state(
            pc,
            self.tissue.sample("avp", sites),
            self.tissue.sample("tolvaptan", sites),
            self.tissue.sample("mitogen", sites),
            p,
        )
        self.table.set_rows(new, y)
        since = self.rng.random(new.size) * delta
        erk = self.system.index(y)["erk"]
        prolif = cysts.proliferation(erk, self.t + delta - 0.5 * since, p)
        a["lining"][new] = p["lining0"] * np.exp((prolif - p["apoptosis"]) * since)
        a["lumen"][new] = cysts.wall_volume_ml(a["lining"][new], p["a_cell"])  # full

    def _constrain(self, rows: NDArray[np.int64]) -> None:
        a = self.table.attrs
        cr = rows[a["cystic"][rows] > 0]
        labels, n = cysts.label_cysts(a["site"][cr], self.nx, self.ny)
        lumen, v_k, _ = cysts.constrain_lumen(
            a["lining"][cr], a["lumen"][cr], a["floor"][cr], labels, n, self.params["a_cell"]
        )
        a["lumen"][cr] = lumen
        self._n_cysts, self._cyst_volumes = n, v_k

    # ------------------------------------------------------------------ projective driver
    def _start_burst(self) -> None:
        """Fix the units whose walls and lumens are the coarse variables of this burst."""
        self._burst_rows = self.table.live_rows()

    def _restrict(self) -> NDArray[np.float64]:
        a = self.table.attrs
        rows = self._burst_rows
        cystic = a["cystic"][rows] > 0
        lining = np.where(cystic, a["lining"][rows], np.nan)
        lumen = np.where(cystic, a["lumen"][rows], np.nan)
        return np.concatenate([lining, lumen])

    def _max_order(self) -> NDArray[np.int64]:
        """Walls take the full order; lumens, which sit on the wall bound or leave it, 1."""
        n = self._burst_rows.size
        return np.r_[np.full(n, self.params["projective_order"]), np.ones(n, dtype=np.int64)]

    def _at_wall_bound(self, cr: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Cystic rows ``cr`` whose cyst's lumen fills its wall (wall-limited growth)."""
        a, p = self.table.attrs, self.params
        labels, n = cysts.label_cysts(a["site"][cr], self.nx, self.ny)
        idx = labels - 1
        v_k = np.bincount(idx, a["lumen"][cr], n)
        vmax = cysts.wall_volume_ml(np.bincount(idx, a["lining"][cr], n), p["a_cell"])
        return (v_k >= vmax * (1.0 - 1e-9))[idx]

    def _lift(self, x: NDArray[np.float64], delta: float) -> None:
        """Set walls and lumens to the projection; a wall-limited cyst stays at its bound.

        A cyst whose lumen filled its wall at the end of the burst is secreting faster than
        its wall grows; it is lifted onto the bound of its projected wall (as every micro
        step would keep it), the others to their projected lumen.
        """
        a = self.table.attrs
        rows = self._burst_rows
        n = rows.size
        cystic = a["cystic"][rows] > 0
        cr = rows[cystic]
        full = self._at_wall_bound(cr)
        a["lining"][cr] = x[:n][cystic]
        lumen = np.maximum(x[n:][cystic], a["floor"][cr])
        a["lumen"][cr] = np.where(full, np.inf, lumen)
        # second hits over the projection interval at the burst's last hazard (exact law
        # for a constant hazard), then the phenotype switch and the wall bound
        # hazard ∝ proliferation ∝ competence: use its mean over the projected interval
        p = self.params
        t_b = self.t
        c_b = cysts.competence(t_b, p)
        tau = p["tau_dev"]
        mean_c = p["c_adult"] + (1 - p["c_adult"]) * tau / max(delta, 1e-12) * (
            np.exp(-t_b / tau) - np.exp(-(t_b + delta) / tau)
        )
        self._hits(rows[~cystic], delta, scale=mean_c / c_b if delta > 0 else 1.0)
        self._lift_new_cysts(self._switch(rows), delta)
        self._constrain(rows)

    # ------------------------------------------------------------------ organ readouts
    def measure(self) -> dict[str, float]:
        """Organ biomarkers: the patch scaled to the kidney pair (see :mod:`.organ`)."""
        p, a = self.params, self.table.attrs
        rows = self.table.live_rows()
        age = self.t
        scale = organ.scale_factor(self.lattice.n_sites, p)
        cystic = a["cystic"][rows] > 0
        cyst_ml = float(a["lumen"][rows][cystic].sum()) * scale
        tkv = organ.parenchyma_ml(age, p) + cyst_ml
        h = organ.height_m(age, p)
        if self._prev_tkv is None or age <= 0:
            growth = 0.0
        else:
            growth = 100.0 * np.expm1(np.log(tkv / self._prev_tkv) / self.run["dt_output"])
        self._prev_tkv = tkv
        y = self.population().state(rows)
        assert self.tissue is not None
        avp = self.tissue.sample("avp", a["site"][rows])
        tol = self.tissue.sample("tolvaptan", a["site"][rows])
        ra, rt = avp / p["k_avp"], tol / p["k_tol"]
        occ = float(np.mean(ra / (1.0 + ra + rt)))
        n_cysts = self._n_cysts
        return {
            "tkv_ml": tkv,
            "httkv_ml_m": tkv / h,
            "cyst_volume_ml": cyst_ml,
            "cyst_count": n_cysts * scale,
            "cysts_patch": float(n_cysts),
            "cystic_fraction": float(cystic.mean()),
            "tkv_growth_pct": float(growth),
            "mayo_class": float(organ.mayo_class(tkv / h, age)),
            "ca_cystic_um": float(y["ca"][cystic].mean()) if cystic.any() else 0.0,
            "camp_cystic_um": float(y["camp"][cystic].mean()) if cystic.any() else 0.0,
            "v2r_occupancy": occ,
            "mitogen_mean": float(self.tissue.values("mitogen").mean()),
        }

    def summary(self) -> dict[str, Any]:
        """Growth over the stated age window, TKV at its start, the Mayo class, end state."""
        p = self.params
        df = self.recorder.frame()
        ages, tkv = df.index.to_numpy(), df["tkv_ml"].to_numpy()
        w0, w1 = p["window_start"], p["window_end"]
        i0 = int(np.argmin(np.abs(ages - w0)))
        age0 = float(ages[i0])
        ht0 = float(df["httkv_ml_m"].iloc[i0])
        klass = organ.mayo_class(ht0, age0)
        return {
            "germline": p["germline"],
            "tolvaptan_start_age": p["tolvaptan_start"] if p["tolvaptan_start"] < 999 else None,
            "growth_window_age": [w0, w1],
            "tkv_growth_pct_per_yr": organ.growth_rate_pct(ages, tkv, w0, w1),
            "tkv_ml_at_window_start": float(tkv[i0]),
            "httkv_ml_m_at_window_start": ht0,
            "mayo_class": organ.MAYO_CLASSES[klass - 1] if klass else None,
            "mayo_implied_growth_pct": organ.mayo_rate_pct(ht0, age0),
            "age_end": float(ages[-1]),
            "tkv_ml_end": float(tkv[-1]),
            "cyst_count_end": float(df["cyst_count"].iloc[-1]),
            "projective": bool(p["projective"]),
        }

    def write_outputs(self, run_dir: Path) -> None:
        """A map of the patch's cyst lumens and the TKV trajectory with Mayo class bands."""
        from matplotlib.figure import Figure

        from biohybrid.figures import save_figure

        a = self.table.attrs
        rows = self.table.live_rows()
        img = np.zeros(self.nx * self.ny)
        img[a["site"][rows]] = np.where(a["cystic"][rows] > 0, a["lumen"][rows], 0.0)
        fig = Figure(figsize=(10, 4), layout="constrained")
        ax1, ax2 = fig.subplots(1, 2)
        im = ax1.imshow(
            np.log10(img.reshape(self.ny, self.nx) + 1e-12), origin="lower", vmin=-9, cmap="magma"
        )
        fig.colorbar(im, ax=ax1, label="log10 lumen share (mL)")
        ax1.set_title(f"cysts at age {self.t:g} yr")
        df = self.recorder.frame()
        ages = df.index.to_numpy()
        ax2.semilogy(ages, df["httkv_ml_m"], "k-", label="model htTKV")
        for rate, name in zip(
            (*organ.MAYO_BOUNDS_PCT,), ("1A|1B", "1B|1C", "1C|1D", "1D|1E"), strict=True
        ):
            ax2.semilogy(ages, 150 * (1 + rate / 100) ** ages, ":", lw=0.8, label=name)
        ax2.set_xlabel("age (yr)")
        ax2.set_ylabel("htTKV (mL/m)")
        ax2.legend(fontsize=7)
        save_figure(fig, run_dir / "figures" / "adpkd.png")
