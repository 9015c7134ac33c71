"""Two cell types in 3-D: sources secrete a factor, responders sense it, divide and follow it."""

from biohybrid.models.paracrine.model import ParacrineModel

MODEL = ParacrineModel

__all__ = ["MODEL", "ParacrineModel"]
