"""Analysis of run outputs: complexity measures for biomarker series."""

from biohybrid.analysis.entropy import (
    coarse_grain,
    multiscale_entropy,
    sample_entropy,
    white_noise_sample_entropy,
)

__all__ = ["coarse_grain", "multiscale_entropy", "sample_entropy", "white_noise_sample_entropy"]
