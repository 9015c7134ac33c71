"""Mass ledger of a tissue field: where every unit of substance went, step by step.

For the backward-Euler finite-volume step ``V (c¹ − c⁰)/dt = Σ_faces F(c¹) + S − V (k + u) c¹``
the interior face fluxes cancel in the sum over cells, so

``Δmass = secreted − taken_up − decayed − boundary_loss``

holds to round-off when every term is evaluated at the post-step values ``c¹``:
``secreted = dt Σ S``, ``taken_up = dt Σ V u c¹``, ``decayed = dt Σ V k c¹`` and
``boundary_loss = dt Σ_{Dirichlet faces} g_f (c¹_P − c_b)`` with face conductance
``g_f = D A_f / d_f`` (``A_f`` the face area, ``d_f`` the centre-to-face distance).
All amounts are in concentration × µm^d (the field's units times the site volume's units:
µm in 1-D, µm² in 2-D, µm³ in 3-D).

**What the balance cannot see.** The balance is the sum of the rows of the step's linear
system ``A c¹ = b``, so it checks only ``Σ (b − A c¹) = 0``. A solver that corrects its
answer to conserve mass (as :class:`~biohybrid.tissue.solvers.CachedLUSolver` does after
CG) keeps it at round-off however wrong the field is. Each step therefore also records the
linear system's relative residual ``‖b − A c¹‖₂ / ‖b‖₂``, recomputed by the layer from the
stored field (``residual``; the largest so far is :attr:`FieldLedger.max_residual`), and
``dt ‖b − A c¹‖₁``, the amount the residual misplaces between sites (``residual_amount``).

References:
    Versteeg, H. K. & Malalasekera, W. (2007). An Introduction to Computational Fluid
    Dynamics: The Finite Volume Method, 2nd ed., Pearson, ch. 8 (conservation of the
    implicit finite-volume scheme).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StepLedger:
    """Amounts moved during one field step (concentration × µm²).

    Attributes:
        secreted: Added by the cells' secretion.
        taken_up: Removed by the cells' uptake.
        decayed: Removed by first-order decay.
        boundary_loss: Net outflow through Dirichlet boundaries (negative for inflow).
        delta_mass: Change of the field's integral.
        residual: Relative residual ``‖b − A c¹‖₂ / ‖b‖₂`` of the step's linear system.
        residual_amount: ``dt ‖b − A c¹‖₁``, the amount the residual misplaces.
        imbalance: ``delta_mass − (secreted − taken_up − decayed − boundary_loss)``.
    """

    secreted: float
    taken_up: float
    decayed: float
    boundary_loss: float
    delta_mass: float
    residual: float = 0.0
    residual_amount: float = 0.0

    @property
    def imbalance(self) -> float:
        """The amount unaccounted for; round-off for an exact solve."""
        return self.delta_mass - (self.secreted - self.taken_up - self.decayed - self.boundary_loss)


@dataclass
class FieldLedger:
    """Running totals of a field's mass budget.

    Attributes:
        initial_mass: The field's integral when the ledger started.
        steps: Steps recorded.
        secreted: Total secreted.
        taken_up: Total taken up.
        decayed: Total decayed.
        boundary_loss: Total net boundary outflow.
        delta_mass: Total change of the integral.
        max_step_imbalance: Largest ``|imbalance|`` of a single step.
        max_residual: Largest relative residual of a step's linear solve.
        residual_amount: Total of the steps' ``residual_amount``.
        last: The last step's ledger, or ``None``.
    """

    initial_mass: float = 0.0
    steps: int = 0
    secreted: float = 0.0
    taken_up: float = 0.0
    decayed: float = 0.0
    boundary_loss: float = 0.0
    delta_mass: float = 0.0
    max_step_imbalance: float = 0.0
    max_residual: float = 0.0
    residual_amount: float = 0.0
    last: StepLedger | None = field(default=None, repr=False)

    def record(self, step: StepLedger) -> None:
        """Add one step's amounts to the totals."""
        self.steps += 1
        self.secreted += step.secreted
        self.taken_up += step.taken_up
        self.decayed += step.decayed
        self.boundary_loss += step.boundary_loss
        self.delta_mass += step.delta_mass
        self.max_step_imbalance = max(self.max_step_imbalance, abs(step.imbalance))
        self.max_residual = max(self.max_residual, step.residual)
        self.residual_amount += step.residual_amount
        self.last = step

    @property
    def imbalance(self) -> float:
        """Cumulative amount unaccounted for (concentration × µm²)."""
        return self.delta_mass - (self.secreted - self.taken_up - self.decayed - self.boundary_loss)

    @property
    def scale(self) -> float:
        """The yardstick for the imbalance: the largest of mass and total flows (conc × µm²)."""
        return max(
            abs(self.initial_mass),
            abs(self.initial_mass + self.delta_mass),
            self.secreted,
            self.taken_up,
            self.decayed,
            abs(self.boundary_loss),
        )

    @property
    def relative_imbalance(self) -> float:
        """``|imbalance| / scale`` (0 when nothing has happened)."""
        scale = self.scale
        return abs(self.imbalance) / scale if scale > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        """The totals as a flat dictionary (for manifests and logs)."""
        return {
            "steps": float(self.steps),
            "initial_mass": self.initial_mass,
            "secreted": self.secreted,
            "taken_up": self.taken_up,
            "decayed": self.decayed,
            "boundary_loss": self.boundary_loss,
            "delta_mass": self.delta_mass,
            "imbalance": self.imbalance,
            "relative_imbalance": self.relative_imbalance,
            "max_step_imbalance": self.max_step_imbalance,
            "max_residual": self.max_residual,
            "last_residual": self.last.residual if self.last is not None else 0.0,
            "residual_amount": self.residual_amount,
        }
