"""Tissue scale: diffusing FiPy fields on a mesh aligned with the agent grid."""

from biohybrid.tissue.fields import FieldSpec
from biohybrid.tissue.layer import TissueLayer

__all__ = ["FieldSpec", "TissueLayer"]
