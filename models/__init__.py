"""Bundled biohybrid models, one small package per model (installed as ``biohybrid.models``)."""
