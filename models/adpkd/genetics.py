"""Genetics of ADPKD: germline heterozygosity, somatic second hits and the dosage threshold.

Every tubular unit of the patch carries the germline genotype of the patient:

* ``"pkd1"``: one inactive PKD1 allele, polycystin-1 dosage 1/2;
* ``"pkd2"``: one inactive PKD2 allele, polycystin-2 dosage 1/2;
* ``"none"``: no germline mutation (both alleles of both genes active).

The functional polycystin complex (PC1-PC2) is limited by the scarcer partner, so a unit's
functional polycystin is ``pc = min(pc1, pc2)`` with each ``pc`` the active-allele dosage
(times a per-unit expression factor, see below). A *somatic second hit* inactivates the
remaining allele of the germline-mutated gene (two-hit model: Qian et al. 1996; Pei 2001).
Hits arise during DNA replication, so their hazard per unit and year is

``μ = u_hit · n_cells_unit · p``

with ``u_hit`` the probability per cell division that the remaining allele is lost, ``p`` the
proliferation rate (divisions per cell per year) and ``n_cells_unit`` the cells of one unit.
PKD1 is a large, GC-rich and mutation-prone gene and PKD2 a small one, so ``u_hit`` is lower
for PKD2; with cyst *growth* the same, this alone makes PKD2 kidneys smaller at the same age
("more cysts develop earlier", Harris et al. 2006).

A unit whose functional polycystin falls below ``pc_threshold`` switches to the cystic
phenotype (dosage/threshold model: Lantinga-van Leeuwen et al. 2004, hypomorphic Pkd1
nl/nl mice with ~20% of normal Pkd1 expression develop cysts; Rossetti et al. 2009,
incompletely penetrant PKD1 alleles). Per-unit expression varies about its mean
(log-normal with coefficient of variation ``pc_cv``), so a few heterozygous units can fall
below threshold without a second hit.

References:
    Qian, F., Watnick, T. J., Onuchic, L. F. & Germino, G. G. (1996). The molecular basis of
    focal cyst formation in human autosomal dominant polycystic kidney disease type I.
    Cell 87(6):979-987.
    Pei, Y. (2001). A "two-hit" model of cystogenesis in autosomal dominant polycystic kidney
    disease? Trends Mol. Med. 7(4):151-156.
    Lantinga-van Leeuwen, I. S. et al. (2004). Lowering of Pkd1 expression is sufficient to
    cause polycystic kidney disease. Hum. Mol. Genet. 13(24):3069-3077.
    Rossetti, S. et al. (2009). Incompletely penetrant PKD1 alleles suggest a role for gene
    dosage in cyst initiation in polycystic kidney disease. Kidney Int. 75(8):848-855.
    Harris, P. C. et al. (2006). Cyst number but not the rate of cystic growth is associated
    with the mutated gene in autosomal dominant polycystic kidney disease. J. Am. Soc.
    Nephrol. 17(11):3013-3019.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

GERMLINE = ("pkd1", "pkd2", "none")


def germline_dosage(germline: str) -> tuple[float, float]:
    """Active-allele dosage ``(pc1, pc2)`` of the germline genotype (1 = both alleles).

    Args:
        germline: One of :data:`GERMLINE`.

    Returns:
        ``(pc1, pc2)`` in units of the wild-type dosage.
    """
    return {"pkd1": (0.5, 1.0), "pkd2": (1.0, 0.5), "none": (1.0, 1.0)}[germline]


def expression_factor(rng: np.random.Generator, n: int, cv: float) -> NDArray[np.float64]:
    """Per-unit expression factors, log-normal with mean 1 and coefficient of variation ``cv``.

    Args:
        rng: The model's random generator.
        n: Number of units.
        cv: Coefficient of variation (0 gives all ones).

    Returns:
        Factors, shape ``(n,)``.
    """
    if cv <= 0:
        return np.ones(n)
    s2 = np.log1p(cv * cv)
    return np.exp(rng.normal(-0.5 * s2, np.sqrt(s2), n))


def functional_polycystin(
    pc1: NDArray[np.float64], pc2: NDArray[np.float64], expression: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Functional PC1-PC2 complex, limited by the scarcer partner.

    Args:
        pc1: PC1 active-allele dosage per unit, shape ``(N,)``.
        pc2: PC2 active-allele dosage per unit, shape ``(N,)``.
        expression: Per-unit expression factor, shape ``(N,)``.

    Returns:
        Functional polycystin relative to wild type, shape ``(N,)``.
    """
    return np.minimum(pc1, pc2) * expression


def second_hit_hazard(
    prolif: NDArray[np.float64], u_hit: float, n_cells_unit: float
) -> NDArray[np.float64]:
    """Hazard of a somatic second hit per unit, 1/yr (replication-coupled mutation).

    Args:
        prolif: Proliferation rate per cell, divisions/yr, shape ``(N,)``.
        u_hit: Probability per division that the remaining allele is inactivated.
        n_cells_unit: Epithelial cells in one unit.

    Returns:
        Hazard per unit, 1/yr, shape ``(N,)``.
    """
    return u_hit * n_cells_unit * np.clip(prolif, 0.0, None)


def draw_hits(
    rng: np.random.Generator, hazard: NDArray[np.float64], dt: float
) -> NDArray[np.bool_]:
    """Which units receive a hit over ``dt`` at constant hazard (exact Poisson law).

    Args:
        rng: The model's random generator.
        hazard: Hazard per unit, 1/yr, shape ``(N,)``.
        dt: Interval, yr.

    Returns:
        Boolean mask, shape ``(N,)``.
    """
    return rng.random(hazard.size) < -np.expm1(-hazard * dt)
