"""Paracrine signalling between two cell types in a 3-D tissue (the two-population example).

* ``source`` cells secrete a diffusing factor at a rate set by their activity ``a``
  (``da/dt = k_act (1 − a) − k_inact a``);
* ``responder`` cells bind it (``dr/dt = k_on c (1 − r) − k_off r``), divide at a rate
  proportional to their bound fraction, die at a constant rate and crawl up the factor's
  gradient (chemotaxis);
* the factor diffuses, decays and is taken up by responders.

Each population has its own species, parameters (``source.secretion``,
``responder.div_rate`` …), stepper and state table; ``--set responder.k_on=...`` reaches
only the responders. The engine aggregates per population (cell counts, mean bound
fraction). A didactic model, not a calibrated one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from biohybrid.cells.motility import Motility
from biohybrid.intracellular import Named, OdeSystem, SpeciesIndex
from biohybrid.model import HybridModel
from biohybrid.organ import Biomarker
from biohybrid.params import Param, ParameterSet
from biohybrid.populations import Cells, Population
from biohybrid.tissue import FieldSpec

SOURCE = ParameterSet(
    {
        "k_act": Param(0.1, "1/min", "Activation rate of a source", ge=0),
        "k_inact": Param(0.02, "1/min", "Inactivation rate of a source", ge=0),
        "secretion": Param(2.0e4, "nM·µm³/min", "Secretion per source at full activity", ge=0),
    },
    title="population 'source'",
)
RESPONDER = ParameterSet(
    {
        "k_on": Param(1.0, "1/(nM·min)", "Binding rate constant", ge=0),
        "k_off": Param(0.5, "1/min", "Unbinding rate", gt=0),
        "uptake": Param(0.01, "1/min", "Uptake coefficient per responder", ge=0),
        "div_rate": Param(1 / 120, "1/min", "Division rate at full binding", ge=0),
        "death_rate": Param(1 / 600, "1/min", "Death rate", ge=0),
        "hop_rate": Param(0.05, "1/min", "Attempted hops to a neighbouring site", ge=0),
        "chemotaxis": Param(2.0, "1/(nM/site)", "Bias up the factor gradient", ge=0),
    },
    title="population 'responder'",
)

A = SpeciesIndex(("a",))
R = SpeciesIndex(("r",))
INPUTS = SpeciesIndex(("factor",), "inputs")


def source_rhs(t: Any, y: NDArray, p: Mapping[str, Any], u: NDArray) -> NDArray:
    """``da/dt``, shape ``(N, 1)``, per minute."""
    s, out = A(y), A.empty_like(y)
    out["a"] = p["k_act"] * (1.0 - s["a"]) - p["k_inact"] * s["a"]
    return out.array


def source_jac(t: Any, y: NDArray, p: Mapping[str, Any], u: NDArray) -> NDArray:
    """Jacobian, shape ``(N, 1, 1)``."""
    return np.full((y.shape[0], 1, 1), -(p["k_act"] + p["k_inact"]))


def responder_rhs(t: Any, y: NDArray, p: Mapping[str, Any], u: NDArray) -> NDArray:
    """``dr/dt``, shape ``(N, 1)``; input ``factor`` is the local concentration, nM."""
    s, out = R(y), R.empty_like(y)
    c = INPUTS(u)["factor"]
    out["r"] = p["k_on"] * c * (1.0 - s["r"]) - p["k_off"] * s["r"]
    return out.array


def responder_jac(t: Any, y: NDArray, p: Mapping[str, Any], u: NDArray) -> NDArray:
    """Jacobian, shape ``(N, 1, 1)``."""
    return (-(p["k_on"] * INPUTS(u)["factor"]) - p["k_off"]).reshape(-1, 1, 1)


class ParacrineModel(HybridModel):
    """Sources and responders coupled by a diffusing factor (module docstring)."""

    name = "paracrine"
    description = "Two cell types in 3-D: sources secrete, responders sense, divide and follow"
    time_units = "min"
    parameters = ParameterSet(
        {
            "diffusion": Param(6000.0, "µm²/min", "Diffusion coefficient of the factor", ge=0),
            "decay": Param(0.05, "1/min", "Decay of the factor", ge=0),
            "n_sources": Param(8, "cells", "Source cells placed at random", ge=0, kind=int),
            "n_responders": Param(40, "cells", "Responder cells placed at random", ge=0, kind=int),
        },
        title="model 'paracrine'",
    )
    populations = (
        Population("source", SOURCE, "Secreting cells"),
        Population("responder", RESPONDER, "Sensing, dividing, chemotactic cells"),
    )
    run_defaults: ClassVar[dict[str, Any]] = {
        "t_end": 600.0,
        "dt_output": 30.0,
        "dt_ode": 5.0,
        "dt_field": 5.0,
        "dt_behaviour": 10.0,
        "shape": [16, 16, 8],
        "spacing": [15.0],
    }
    biomarkers = (
        Biomarker("n_source", "cells", "Source cells", population="source", reduce="count"),
        Biomarker(
            "n_responder", "cells", "Responder cells", population="responder", reduce="count"
        ),
        Biomarker(
            "source_activity",
            "1",
            "Mean source activity",
            population="source",
            species="a",
            reduce="mean",
        ),
        Biomarker(
            "bound_mean",
            "1",
            "Mean bound fraction of responders",
            population="responder",
            species="r",
            reduce="mean",
        ),
        Biomarker("factor_total", "nM·µm³", "Integral of the factor"),
    )

    def build_system(self, population: str) -> OdeSystem:
        """The source's activity or the responder's receptor binding."""
        if population == "source":
            return OdeSystem("activity", ("a",), SOURCE, source_rhs, {"a": 0.0}, jac=source_jac)
        return OdeSystem(
            "binding", ("r",), RESPONDER, responder_rhs, {"r": 0.0}, ("factor",), responder_jac
        )

    def build_fields(self) -> Sequence[FieldSpec]:
        """The factor: diffusing, decaying, no flux at the walls."""
        p = self.params
        return [FieldSpec("factor", p["diffusion"], p["decay"], units="nM")]

    def setup(self) -> None:
        """Sources and responders on distinct random sites."""
        p = self.params
        n = min(p["n_sources"] + p["n_responders"], self.lattice.n_sites)
        sites = self.rng.choice(self.lattice.n_sites, size=n, replace=False)
        for i, site in enumerate(sites):
            pop = "source" if i < p["n_sources"] else "responder"
            self.add_cell(int(site), population=pop)

    def cell_outputs(
        self, cells: Cells, rows: NDArray[np.int64], y: Named
    ) -> Mapping[str, tuple[Any, Any]]:
        """Sources secrete in proportion to activity; responders take the factor up."""
        if cells.name == "source":
            return {"factor": (cells.params["secretion"] * y["a"], None)}
        return {"factor": (None, cells.params["uptake"])}

    def behaviour(
        self, cells: Cells, rows: NDArray[np.int64], y: Named, dt: float
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Responders divide at ``div_rate · r`` and die at ``death_rate``; sources persist."""
        if cells.name == "source":
            none = np.zeros(rows.size, dtype=bool)
            return none, none
        p = cells.params
        draws = self.rng.random((2, rows.size))
        divide = draws[0] < 1.0 - np.exp(-p["div_rate"] * np.clip(y["r"], 0, 1) * dt)
        die = draws[1] < 1.0 - np.exp(-p["death_rate"] * dt)
        return divide, die

    def motility(self, cells: Cells, rows: NDArray[np.int64], y: Named) -> Motility | None:
        """Responders hop at ``hop_rate``, biased up the factor gradient."""
        if cells.name == "source":
            return None
        p = cells.params
        return Motility(rate=p["hop_rate"], chemotaxis=p["chemotaxis"], field="factor")

    def measure(self) -> dict[str, float]:
        """The factor's integral (the other biomarkers are per-population aggregates)."""
        assert self.tissue is not None
        return {"factor_total": self.tissue.total("factor")}
