"""Memory: estimate what a model will take before allocating it, and refuse what cannot fit.

A run that cannot fit should say so at once, with the numbers, instead of spending minutes
and gigabytes setting up and then being killed. The estimate is per lattice site, from the
measured peak of the astrocyte wave at 10⁶ sites: 5.25 GB, i.e. about 5.25 kB per site, of
which the Mesa cell objects take ~1.2 kB, FiPy's mesh caches ~0.6 kB, sparse LU factors and
the intracellular kernel's temporaries most of the rest (measured on this project's machine,
recorded in the scale issue). It is a floor for the bundled models, not a bound: a model
with many species or fields takes more.
"""

from __future__ import annotations

import os
from pathlib import Path

from biohybrid.errors import UserError

#: Measured peak bytes per lattice site (astrocyte wave, 10⁶ sites, 5.25 GB).
BYTES_PER_SITE = 5250.0


def available_bytes() -> float | None:
    """Memory available to a new allocation now (``MemAvailable``), or ``None`` if unknown."""
    meminfo = Path("/proc/meminfo")
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024.0
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def estimate_bytes(n_sites: int) -> float:
    """Estimated peak memory of a model on ``n_sites`` lattice sites, bytes."""
    return BYTES_PER_SITE * float(n_sites)


def check_fits(n_sites: int, shape: list[int] | tuple[int, ...], what: str) -> None:
    """Refuse a lattice whose estimated memory exceeds what the machine has free.

    Args:
        n_sites: Number of lattice sites.
        shape: The lattice shape, for the message.
        what: The model, for the message.

    Raises:
        UserError: The estimate exceeds the available memory; the message gives both.
    """
    free = available_bytes()
    need = estimate_bytes(n_sites)
    if free is not None and need > free:
        raise UserError(
            f"A lattice of shape {list(shape)} ({n_sites:,} sites) for model '{what}' needs"
            f" about {need / 1e9:.1f} GB (≈{BYTES_PER_SITE / 1e3:.2f} kB per site), but this"
            f" machine has {free / 1e9:.1f} GB of free memory. Choose a smaller shape."
        )
