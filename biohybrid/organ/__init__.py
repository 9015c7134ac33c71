"""Organ scale: aggregation of cells and fields into biomarker time series."""

from biohybrid.organ.aggregator import Biomarker, BiomarkerRecorder

__all__ = ["Biomarker", "BiomarkerRecorder"]
