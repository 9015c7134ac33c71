"""Bundled scenario files (``*.toml``), installed as ``biohybrid.scenarios``."""
