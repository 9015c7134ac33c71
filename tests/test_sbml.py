"""SBML import: validated on cases of the SBML Test Suite, batched, with a checked Jacobian.

The cases in ``tests/data/sbml/`` are copied from the SBML Test Suite (semantic cases, LGPL,
licence file beside them); the expected values are the suite's, produced analytically or
agreed by at least two independent simulators, and the pass criterion is the suite's own:
``|computed - expected| <= absolute + relative * |expected|`` at every reported time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biohybrid.errors import UserError
from biohybrid.importers import SbmlCache, load_sbml, read_sbml
from biohybrid.importers.suite import (
    model_file,
    read_results,
    read_settings,
    run_case,
    simulate,
)
from biohybrid.intracellular import OdeSystem, integrate

DATA = Path(__file__).parent / "data" / "sbml"
# ../shared beside the checkout (or beside the worktrees' folder); absent on a user's clone.
SHARED = next(
    (
        base / "shared" / "sbml-test-suite"
        for base in (Path(__file__).parents[2], Path(__file__).parents[3])
        if (base / "shared" / "sbml-test-suite").is_dir()
    ),
    Path("/nonexistent"),
)
CASES = sorted(p.name for p in DATA.iterdir() if p.is_dir() and p.name.isdigit())
BATCH_CASE, BATCH_PARAM = "00292", "k2"  # reactions between two compartments, 4 species
# Nonlinear rate laws: mass action of two species, function definitions, two compartments,
# local parameters with time, variable stoichiometry with conversion factors.
JAC_CASES = ("00121", "00289", "00292", "01121", "01727", "00028")


@pytest.mark.parametrize("case", CASES)
def test_suite_case(case: str) -> None:
    """Each copied case reproduces the suite's expected time course within its tolerances."""
    result = run_case(DATA / case)
    assert result.status == "pass", f"{case}: {result.status}: {result.reason}"


def test_cases_cover_the_supported_features() -> None:
    """The copied subset exercises every feature the importer claims (suite tags)."""
    tags: set[str] = set()
    for case in CASES:
        for line in (DATA / case / f"{case}-model.m").read_text().splitlines():
            if line.startswith(("componentTags:", "testTags:")):
                tags |= {t.strip() for t in line.split(":", 1)[1].split(",") if t.strip()}
    wanted = {  # every tag of the suite's ode/ cases (their model.m files)
        "0D-Compartment", "Amount", "AssignedConstantStoichiometry",
        "AssignedVariableStoichiometry", "AssignmentRule", "BoolNumericSwap",
        "BoundaryCondition", "CSymbolAvogadro", "CSymbolRateOf", "CSymbolTime", "Compartment",
        "Concentration", "ConstantSpecies", "ConversionFactors", "DefaultValue",
        "FunctionDefinition", "HasOnlySubstanceUnits", "InitialAssignment",
        "InitialValueReassigned", "L3v2MathML", "LocalParameters", "MultiCompartment",
        "NoMathML", "NonConstantCompartment", "NonConstantParameter", "NonUnityCompartment",
        "NonUnityStoichiometry", "Parameter", "RateRule", "Reaction", "ReversibleReaction",
        "Species", "SpeciesReferenceInMath", "UncommonMathML", "VolumeConcentrationRates",
    }  # fmt: skip
    assert wanted <= tags, sorted(wanted - tags)


# --------------------------------------------------------------------- bad input / refusals

_SBML = """<?xml version="1.0" encoding="UTF-8"?>
<sbml xmlns="http://www.sbml.org/sbml/level3/version1/core" level="3" version="1"{ns}>
  <model id="m">
    <listOfUnitDefinitions>
      <unitDefinition id="per_second">
        <listOfUnits>
          <unit kind="second" exponent="-1" scale="0" multiplier="1"/>
        </listOfUnits>
      </unitDefinition>
      <unitDefinition id="ml">
        <listOfUnits>
          <unit kind="litre" exponent="1" scale="-3" multiplier="1"/>
        </listOfUnits>
      </unitDefinition>
    </listOfUnitDefinitions>
    <listOfCompartments>
      <compartment id="c" spatialDimensions="3" size="1" units="ml" constant="true"/>
    </listOfCompartments>
    <listOfSpecies>
      <species id="S" compartment="c" initialConcentration="1"
               hasOnlySubstanceUnits="false" boundaryCondition="false" constant="false"/>
    </listOfSpecies>
    <listOfParameters>
      <parameter id="k" value="2" units="per_second" constant="true"/>
      <parameter id="x" value="0" constant="false"/>
    </listOfParameters>
    {extra}
    <listOfReactions>
      <reaction id="R" reversible="false" fast="{fast}">
        <listOfReactants>
          <speciesReference species="S" stoichiometry="1" constant="true"/>
        </listOfReactants>
        <kineticLaw>
          <math xmlns="http://www.w3.org/1998/Math/MathML">
            {law}
          </math>
        </kineticLaw>
      </reaction>
    </listOfReactions>
  </model>
</sbml>
"""
_LAW = "<apply><times/><ci>k</ci><ci>S</ci><ci>c</ci></apply>"
_MATHML = 'xmlns="http://www.w3.org/1998/Math/MathML"'


def _write(
    tmp_path: Path, extra: str = "", law: str = _LAW, fast: str = "false", ns: str = ""
) -> Path:
    path = tmp_path / "model.xml"
    path.write_text(_SBML.format(extra=extra, law=law, fast=fast, ns=ns))
    return path


def test_minimal_model_is_exponential_decay(tmp_path: Path) -> None:
    """dS/dt = -k S with k = 2, S(0) = 1: S(t) = exp(-2 t) (analytic)."""
    system = load_sbml(_write(tmp_path))
    assert isinstance(system, OdeSystem)
    assert system.species == ("S",)
    assert system.params["k"].default == 2.0
    assert system.params["k"].units == "second^-1"
    assert system.params["c"].units == "0.001 litre"
    assert system.units["S"] == "SBML concentration"  # no substance units declared
    p, u = system.bind(system.params.defaults(), None, 1)
    res = integrate(
        system.rhs, system.initial_state()[None], (0.0, 1.5), jac=system.jac, args=(p, u),
        rtol=1e-10, atol=1e-12,
    )  # fmt: skip
    assert res.y[0, 0] == pytest.approx(np.exp(-3.0), rel=1e-8)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (
            {
                "extra": '<listOfEvents><event id="ev1" useValuesFromTriggerTime="true">'
                f'<trigger initialValue="true" persistent="true"><math {_MATHML}>'
                "<apply><gt/><csymbol encoding='text' "
                "definitionURL='http://www.sbml.org/sbml/symbols/time'>t</csymbol>"
                "<cn>1</cn></apply></math></trigger>"
                '<listOfEventAssignments><eventAssignment variable="x">'
                f"<math {_MATHML}><cn>1</cn></math></eventAssignment>"
                "</listOfEventAssignments></event></listOfEvents>"
            },
            ["event", "ev1"],
        ),
        (
            {
                "extra": f'<listOfRules><algebraicRule metaid="alg1"><math {_MATHML}>'
                "<apply><minus/><ci>x</ci><ci>k</ci></apply></math></algebraicRule>"
                "</listOfRules>"
            },
            ["algebraic rule", "alg1"],
        ),
        ({"fast": "true"}, ["fast reaction", "'R'"]),
        (
            {
                "law": "<apply><times/><ci>k</ci><apply><csymbol encoding='text' definitionURL="
                "'http://www.sbml.org/sbml/symbols/delay'>delay</csymbol><ci>S</ci>"
                "<cn>1</cn></apply></apply>"
            },
            ["delay", "delay issue", "'R'"],
        ),
        (
            {
                "ns": ' xmlns:comp="http://www.sbml.org/sbml/level3/version1/comp/version1"'
                ' comp:required="true"'
            },
            ["package", "comp"],
        ),
        (
            {
                "extra": '<listOfConstraints><constraint metaid="con1">'
                f"<math {_MATHML}><apply><gt/><ci>k</ci><cn>0</cn></apply></math>"
                "</constraint></listOfConstraints>"
            },
            ["constraint", "con1"],
        ),
        ({"law": "<ci>nope</ci>"}, ["undefined", "nope", "'R'"]),
    ],
    ids=["event", "algebraic", "fast", "delay", "package", "constraint", "undefined-name"],
)
def test_unsupported_is_refused_by_name(tmp_path: Path, kwargs: dict, words: list[str]) -> None:
    """Unsupported SBML is refused with a UserError naming the element and its kind."""
    with pytest.raises(UserError) as err:
        load_sbml(_write(tmp_path, **kwargs))
    for word in words:
        assert word in str(err.value)


def test_not_sbml_and_missing_file(tmp_path: Path) -> None:
    """A file that is not SBML, malformed XML, and a missing file: clear UserErrors."""
    bad = tmp_path / "bad.xml"
    bad.write_text("<html><body>hello</body></html>")
    with pytest.raises(UserError, match="not valid SBML"):
        load_sbml(bad)
    broken = tmp_path / "broken.xml"
    broken.write_text(_SBML.format(extra="", law=_LAW, fast="false", ns="")[:300])
    with pytest.raises(UserError, match="line"):
        load_sbml(broken)
    with pytest.raises(UserError, match="Cannot read"):
        load_sbml(tmp_path / "absent.xml")


@pytest.mark.skipif(not (SHARED / "delay").is_dir(), reason="needs ../shared/sbml-test-suite")
def test_delay_cases_are_refused() -> None:
    """Every delay case of the suite is refused with the pointer to the delay issue."""
    for folder in sorted((SHARED / "delay").iterdir()):
        if folder.is_dir():
            result = run_case(folder)
            assert result.status == "refused", folder.name
            assert "delay issue" in result.reason or "package" in result.reason, result.reason


# --------------------------------------------------------------------- batching, Jacobian, cache


def test_batched_rows_equal_single_rows() -> None:
    """100 rows with per-row parameters give, row by row, what each row gives alone."""
    model = read_sbml(model_file(DATA / BATCH_CASE))
    settings = read_settings(DATA / BATCH_CASE / f"{BATCH_CASE}-settings.txt")
    name = BATCH_PARAM
    base = model.system.params[name].default
    scale = np.linspace(0.5, 2.0, 100)
    batched = simulate(model, settings, {name: base * scale}, n=100, rtol=1e-9, atol=1e-14)
    for row in (0, 37, 99):
        alone = simulate(model, settings, {name: base * scale[row]}, n=1, rtol=1e-9, atol=1e-14)
        for var in settings.variables:
            np.testing.assert_allclose(
                batched[var][:, row], alone[var][:, 0], rtol=1e-6, atol=1e-14
            )
    first = settings.variables[0]
    assert not np.allclose(batched[first][-1, 0], batched[first][-1, 99])  # rows do differ


@pytest.mark.parametrize("case", JAC_CASES)
def test_jacobian_matches_finite_differences(case: str) -> None:
    """The sympy Jacobian equals central differences of the generated rhs (independent)."""
    if True:
        system = load_sbml(model_file(DATA / case))
        rng = np.random.default_rng(0)
        y0 = system.initial_state()
        y = np.abs(y0)[None] * rng.uniform(0.5, 1.5, (5, system.k)) + 0.1
        p = system.params.defaults()
        t = np.full(5, 0.3)
        jac = system.jac(t, y, p)
        fd = np.empty_like(jac)
        for j in range(system.k):
            h = 1e-6 * np.maximum(np.abs(y[:, j]), 1e-3)
            up, down = y.copy(), y.copy()
            up[:, j] += h
            down[:, j] -= h
            fd[:, :, j] = (system.rhs(t, up, p) - system.rhs(t, down, p)) / (2 * h[:, None])
        scale = np.abs(fd).max() + 1e-12
        np.testing.assert_allclose(jac, fd, rtol=1e-5, atol=1e-6 * scale, err_msg=case)


def test_cache_reuses_generated_code(tmp_path: Path) -> None:
    """A cached import gives the same system; the cache is keyed by the file's SHA-256."""
    cache = SbmlCache(tmp_path / "cache")
    path = model_file(DATA / CASES[0])
    first = read_sbml(path, cache)
    files = list((tmp_path / "cache").glob("*.json"))
    assert [f.stem for f in files] == [first.sha256]
    second = read_sbml(path, cache)
    assert second.source == first.source
    y = first.system.initial_state()[None]
    p = first.system.params.defaults()
    np.testing.assert_array_equal(first.system.rhs(0.0, y, p), second.system.rhs(0.0, y, p))


def test_results_file_matches_settings() -> None:
    """Sanity of the copied data: every case reports steps + 1 rows of its variables."""
    for case in CASES:
        settings = read_settings(DATA / case / f"{case}-settings.txt")
        header, values = read_results(DATA / case / f"{case}-results.csv")
        assert values.shape[0] == settings.steps + 1
        assert set(header[1:]) == set(settings.variables)


def test_engine_stepper_advances_an_imported_model() -> None:
    """The engine's RODAS4 stepper on a StateTable of 50 cells meets the suite's last row."""
    from biohybrid.intracellular import StateTable, make_stepper

    case = "00001"  # S1 -> S2, mass action; expected values analytic (suite model.m)
    model = read_sbml(model_file(DATA / case))
    settings = read_settings(DATA / case / f"{case}-settings.txt")
    header, expected = read_results(DATA / case / f"{case}-results.csv")
    system = model.system
    table = StateTable(system.species, capacity=50)
    for _ in range(50):
        table.add(system.initial_state())
    stepper = make_stepper("rodas4", system, rtol=1e-8, atol=1e-14)
    t_end = settings.start + settings.duration
    stepper.advance(table, 0.0, t_end, system.params.defaults())
    for name in ("S1", "S2"):
        ref = expected[-1, header.index(name)]
        got = table.species_values(name)  # compartment size 1: amount == concentration
        assert np.all(np.abs(got - ref) <= settings.absolute + settings.relative * abs(ref))
