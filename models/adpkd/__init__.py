"""ADPKD: polycystin loss → Ca²⁺/cAMP signalling → cysts → total kidney volume (issue 6)."""

from biohybrid.models.adpkd.model import AdpkdModel

MODEL = AdpkdModel

__all__ = ["MODEL", "AdpkdModel"]
