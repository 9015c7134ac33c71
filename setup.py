"""Package layout glue: install top-level ``models/`` and ``scenarios/`` inside ``biohybrid``.

The repository keeps model definitions in ``models/`` and scenario files in ``scenarios/``
(a fixed layout). Installed, they become ``biohybrid.models`` and ``biohybrid.scenarios`` so
that ``biohybrid`` finds them from any working directory. Everything else lives in
``pyproject.toml``.
"""

from setuptools import find_packages, setup

packages = find_packages(include=["biohybrid", "biohybrid.*"])
packages += ["biohybrid.models"] + [f"biohybrid.models.{p}" for p in find_packages("models")]
packages += ["biohybrid.scenarios"]

setup(
    packages=packages,
    package_dir={
        "biohybrid": "biohybrid",
        "biohybrid.models": "models",
        "biohybrid.scenarios": "scenarios",
    },
)
