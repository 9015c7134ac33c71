"""A minimal four-scale demo model (growing, self-signalling colony)."""

from biohybrid.models.demo.model import DemoModel

MODEL = DemoModel

__all__ = ["MODEL", "DemoModel"]
