"""The demo model: a growing colony that signals to itself through a diffusing factor.

All four scales in a few lines, for learning the engine and for smoke tests:

* intracellular: fast receptor binding ``r`` and a slow response ``x`` (:mod:`.system`);
* cell: cells divide at a rate proportional to ``x`` into empty neighbouring sites
  (contact inhibition) and die at a constant rate;
* tissue: cells secrete a signal (``s_basal + s_max x``) that diffuses, decays and is
  taken up (FiPy);
* organ: cell count, coverage, mean response and the activated fraction (``x > x_on``).

This is a didactic model, not a calibrated one; its parameters are illustrative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from biohybrid.intracellular import Named, OdeSystem
from biohybrid.model import HybridModel
from biohybrid.models.demo.system import SYSTEM_PARAMETERS, make_system
from biohybrid.organ import Biomarker
from biohybrid.params import Param, ParameterSet
from biohybrid.populations import Cells
from biohybrid.tissue import FieldSpec

PARAMETERS = ParameterSet(
    {
        **SYSTEM_PARAMETERS,
        "diffusion": Param(3000.0, "µm²/min", "Diffusion coefficient of the signal", ge=0),
        "decay": Param(0.05, "1/min", "First-order decay of the signal", ge=0),
        "s_basal": Param(2.0, "µM·µm²/min", "Basal secretion per cell (amount per time)", ge=0),
        "s_max": Param(50.0, "µM·µm²/min", "Extra secretion per cell at full response", ge=0),
        "k_up": Param(0.05, "1/min", "Uptake coefficient per cell", ge=0),
        "div_rate": Param(1 / 300, "1/min", "Division rate per cell at response x = 1", ge=0),
        "death_rate": Param(1 / 3000, "1/min", "Death rate per cell", ge=0),
        "x_on": Param(1.0, "1", "Response threshold for an activated cell", ge=0),
        "seed_radius": Param(6.0, "sites", "Radius of the initial colony", gt=0),
    },
    title="model 'demo'",
)


class DemoModel(HybridModel):
    """A self-signalling colony (see the module docstring)."""

    name = "demo"
    description = "Growing colony signalling through a diffusing factor (all four scales)"
    time_units = "min"
    parameters = PARAMETERS
    run_defaults: ClassVar[dict[str, Any]] = {
        "t_end": 1440.0,
        "dt_output": 30.0,
        "dt_ode": 5.0,
        "dt_field": 5.0,
        "dt_behaviour": 30.0,
        "nx": 40,
        "ny": 40,
        "dx": 10.0,
    }
    biomarkers = (
        Biomarker("n_cells", "cells", "Number of live cells"),
        Biomarker("coverage", "1", "Fraction of grid sites occupied"),
        Biomarker("mean_response", "1", "Mean intracellular response x"),
        Biomarker("activated_fraction", "1", "Fraction of cells with x > x_on"),
        Biomarker("signal_total", "µM·µm²", "Integral of the signal field"),
    )

    def build_system(self, population: str) -> OdeSystem:
        """The receptor-response system."""
        return make_system()

    def build_fields(self) -> Sequence[FieldSpec]:
        """One diffusing, decaying signal with no-flux boundaries."""
        return [
            FieldSpec(
                "signal",
                diffusion=self.params["diffusion"],
                decay=self.params["decay"],
                units="µM",
                description="Autocrine/paracrine growth signal",
            )
        ]

    def setup(self) -> None:
        """A disc of cells in the middle of the grid, with random initial responses."""
        lattice = self.lattice
        centre = (np.asarray(lattice.shape) - 1) / 2
        coords = lattice.coordinates(np.arange(lattice.n_sites))
        inside = ((coords - centre) ** 2).sum(axis=1) <= self.params["seed_radius"] ** 2
        for site in np.flatnonzero(inside):
            self.add_cell(int(site), state={"x": self.rng.uniform(0.0, 0.2)})

    def cell_outputs(
        self, cells: Cells, rows: NDArray[np.int64], y: Named
    ) -> Mapping[str, tuple[NDArray, NDArray]]:
        """Secretion rises with the response; uptake is constant per cell."""
        p = self.params
        secretion = p["s_basal"] + p["s_max"] * np.clip(y["x"], 0.0, None)
        uptake = np.full(rows.size, p["k_up"])
        return {"signal": (secretion, uptake)}

    def behaviour(
        self, cells: Cells, rows: NDArray[np.int64], y: Named, dt: float
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Poisson division at ``div_rate * x`` and death at ``death_rate`` over ``dt``."""
        p = self.params
        x = np.clip(y["x"], 0.0, None)
        p_div = 1.0 - np.exp(-p["div_rate"] * x * dt)
        p_die = 1.0 - np.exp(-p["death_rate"] * dt)
        draws = self.rng.random((2, rows.size))
        return draws[0] < p_div, draws[1] < p_die

    def measure(self) -> dict[str, float]:
        """Organ-level readouts from the live rows and the field."""
        x = self.table.species_values("x")
        n = x.size
        assert self.tissue is not None
        return {
            "n_cells": float(n),
            "coverage": n / self.lattice.n_sites,
            "mean_response": float(x.mean()) if n else 0.0,
            "activated_fraction": float((x > self.params["x_on"]).mean()) if n else 0.0,
            "signal_total": self.tissue.total("signal"),
        }
