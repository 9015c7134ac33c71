"""biohybrid: multiscale hybrid models of Mesa agents, stiff ODEs and FiPy fields."""

__version__ = "0.1.0"
