"""Organ scale: aggregation of cells and fields into biomarker time series."""
