"""Astrocyte network model: Li–Rinzel cells, gap-junction IP3, extracellular ATP waves."""

from biohybrid.models.astrocyte.model import AstrocyteModel

MODEL = AstrocyteModel

__all__ = ["MODEL", "AstrocyteModel"]
