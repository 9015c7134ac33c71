"""A minimal four-scale demo model."""
