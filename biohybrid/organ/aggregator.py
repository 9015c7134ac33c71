"""Organ scale: biomarker declarations and the recorder that turns output steps into rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from biohybrid.errors import SimulationError, UserError


@dataclass(frozen=True)
class Biomarker:
    """One organ-level readout.

    A biomarker is either computed by the model's ``measure()``, or declared as an
    aggregate of one population's species, which the engine computes itself:
    ``Biomarker("ca_mean", "µM", "Mean astrocyte Ca²⁺", population="astrocyte",
    species="ca", reduce="mean")``; ``reduce="count"`` needs no species.

    Attributes:
        name: Column name in ``biomarkers.csv``.
        units: Units, e.g. ``"mL"``; ``"1"`` for dimensionless.
        description: One-line meaning.
        population: For an aggregate: the population it reduces over.
        species: For an aggregate: the species it reduces.
        reduce: For an aggregate: one of :data:`REDUCTIONS`.
    """

    name: str
    units: str
    description: str
    population: str | None = None
    species: str | None = None
    reduce: str | None = None

    def __post_init__(self) -> None:
        if self.population is None:
            if self.species is not None or self.reduce is not None:
                raise UserError(f"biomarker {self.name!r}: species/reduce need a population")
            return
        if self.reduce not in REDUCTIONS:
            raise UserError(
                f"biomarker {self.name!r}: reduce must be one of {', '.join(REDUCTIONS)},"
                f" got {self.reduce!r}"
            )
        if self.reduce != "count" and self.species is None:
            raise UserError(f"biomarker {self.name!r}: reduce={self.reduce!r} needs a species")

    @property
    def is_aggregate(self) -> bool:
        """Whether the engine computes this biomarker from a population's species."""
        return self.population is not None


#: Reductions of a per-population aggregate biomarker (empty population: 0).
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "min", "max", "std", "count")


def reduce_values(values: np.ndarray, how: str) -> float:
    """Reduce per-cell values with one of :data:`REDUCTIONS` (0 for no cells)."""
    if how == "count":
        return float(values.size)
    if values.size == 0:
        return 0.0
    return float(getattr(np, how)(values))


class BiomarkerRecorder:
    """Collect one row of biomarkers per output step.

    Args:
        biomarkers: The declared biomarkers, in column order.
    """

    def __init__(self, biomarkers: Sequence[Biomarker]) -> None:
        self.biomarkers = tuple(biomarkers)
        self._names = [b.name for b in self.biomarkers]
        self.times: list[float] = []
        self.rows: list[list[float]] = []

    @property
    def units(self) -> dict[str, str]:
        """``{name: units}`` for every biomarker."""
        return {b.name: b.units for b in self.biomarkers}

    def record(self, t: float, values: Mapping[str, float]) -> None:
        """Append the row for time ``t``.

        Args:
            t: Model time.
            values: ``{name: value}``; must contain exactly the declared biomarkers.

        Raises:
            ValueError: If names do not match the declarations.
            SimulationError: If a value is NaN or infinite.
        """
        missing = set(self._names) - set(values)
        extra = set(values) - set(self._names)
        if missing or extra:
            raise ValueError(
                f"biomarker mismatch: missing {sorted(missing)}, extra {sorted(extra)}"
            )
        row = [float(values[n]) for n in self._names]
        bad = [n for n, v in zip(self._names, row, strict=True) if not np.isfinite(v)]
        if bad:
            raise SimulationError(f"biomarkers {bad} are not finite at t={t:g}")
        self.times.append(float(t))
        self.rows.append(row)

    def frame(self) -> pd.DataFrame:
        """The biomarkers as a DataFrame indexed by ``time``."""
        df = pd.DataFrame(self.rows, columns=self._names, dtype=float)
        df.index = pd.Index(self.times, name="time", dtype=float)
        return df
