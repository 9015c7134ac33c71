"""Finding models and scenarios: bundled ones, and models registered by other packages.

Models are the packages under ``biohybrid.models`` (the repository's ``models/``) that export
a ``MODEL`` class, plus any class registered in the ``biohybrid.models`` entry-point group.
Scenarios are the ``*.toml`` files bundled in ``biohybrid.scenarios`` (the repository's
``scenarios/``).

Installed, ``biohybrid.models`` and ``biohybrid.scenarios`` are real subpackages. When
``biohybrid`` is imported straight from a source checkout (its folder on ``sys.path``, e.g.
the working directory is the repository root, shadowing an installed copy), they do not
exist under ``biohybrid/``: importing this module then maps them to the checkout's
``models/`` and ``scenarios/``, so the bundled models are found however the package is
installed and from whichever directory it runs.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import pkgutil
import sys
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING

from biohybrid.errors import UserError, did_you_mean, list_choices
from biohybrid.io import check_scenario_path

if TYPE_CHECKING:
    from biohybrid.model import HybridModel


class _CheckoutFinder(importlib.abc.MetaPathFinder):
    """Finds ``biohybrid.models``/``biohybrid.scenarios`` in a source checkout's top level."""

    def __init__(self, packages: dict[str, Path]) -> None:
        self.packages = packages

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        """The spec of a mapped package (its ``__init__.py`` in the checkout), else None."""
        where = self.packages.get(fullname)
        if where is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, where / "__init__.py", submodule_search_locations=[str(where)]
        )


def link_source_checkout() -> None:
    """Map ``biohybrid.models``/``.scenarios`` to a source checkout's folders, if needed.

    Does nothing for an installed copy (it has both subpackages) or when already done. The
    finder goes last on ``sys.meta_path``, so an editable install's own mapping wins.
    """
    package = Path(__file__).resolve().parent
    checkout = package.parent
    if (package / "models").is_dir() or not (checkout / "pyproject.toml").is_file():
        return
    if any(isinstance(f, _CheckoutFinder) for f in sys.meta_path):
        return
    packages = {
        f"biohybrid.{name}": checkout / name
        for name in ("models", "scenarios")
        if (checkout / name / "__init__.py").is_file()
    }
    if packages:
        sys.meta_path.append(_CheckoutFinder(packages))


link_source_checkout()


def available_models() -> dict[str, type[HybridModel]]:
    """All known models by name.

    Returns:
        ``{model name: model class}``.
    """
    import biohybrid.models as bundled

    found: dict[str, type[HybridModel]] = {}
    for info in sorted(pkgutil.iter_modules(bundled.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"biohybrid.models.{info.name}")
        model = getattr(module, "MODEL", None)
        if model is not None:
            found[model.name] = model
    for ep in metadata.entry_points(group="biohybrid.models"):
        model = ep.load()
        found.setdefault(model.name, model)
    return found


def get_model(name: str) -> type[HybridModel]:
    """Look up a model by name.

    Raises:
        UserError: If no model has that name, listing the known models.
    """
    # Fast path: a bundled package named after the model (no scan of every model and plugin).
    try:
        module = importlib.import_module(f"biohybrid.models.{name.replace('-', '_')}")
    except ImportError:
        module = None
    model = getattr(module, "MODEL", None)
    if model is not None and model.name == name:
        return model
    models = available_models()
    if name not in models:
        raise UserError(
            f"Unknown model '{name}'.{did_you_mean(name, models)}"
            f" Known models: {list_choices(models)}."
        )
    return models[name]


def bundled_scenarios() -> dict[str, Path]:
    """The bundled scenario files by name (file stem)."""
    root = resources.files("biohybrid.scenarios")
    out: dict[str, Path] = {}
    for entry in root.iterdir():
        if entry.name.endswith(".toml"):
            out[entry.name[: -len(".toml")]] = Path(str(entry))
    return dict(sorted(out.items()))


def find_scenario(name_or_path: str) -> Path:
    """Resolve a scenario given by bundled name or by file path.

    Args:
        name_or_path: A bundled scenario name (e.g. ``"demo"``) or a path to a ``.toml`` file.

    Returns:
        The scenario file.

    Raises:
        UserError: If it is neither a bundled scenario nor an existing file.
    """
    scenarios = bundled_scenarios()
    if name_or_path in scenarios:
        return scenarios[name_or_path]
    path = Path(name_or_path)
    if path.is_file():
        return path
    check_scenario_path(path)  # a folder, device or FIFO is named as such, never opened
    if path.suffix == ".toml" or "/" in name_or_path:
        raise UserError(
            f"Scenario file '{name_or_path}' does not exist. Bundled scenarios:"
            f" {list_choices(scenarios)}."
        )
    raise UserError(
        f"Unknown scenario '{name_or_path}'.{did_you_mean(name_or_path, scenarios)}"
        f" Bundled scenarios: {list_choices(scenarios)} (or give a path to a .toml file)."
    )
