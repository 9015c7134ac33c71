"""SBML import: a model file becomes a batched :class:`~biohybrid.intracellular.OdeSystem`.

The file is parsed with python-libsbml (the reference SBML parser), every piece of MathML is
translated to a sympy expression by walking libsbml's ``ASTNode`` tree, and the right-hand
side, its analytic Jacobian (sympy differentiation) and the observables are printed as one
vectorised numpy module (:mod:`biohybrid.importers.codegen`).

Semantics (SBML L2V4 and L3V1/L3V2 core):

* The state of a species is its value as it appears in the model's math: its concentration,
  or its amount when ``hasOnlySubstanceUnits`` is set. Reactions change it by
  ``Σ stoichiometry · rate / size(compartment)`` (times the conversion factor, L3).
* Species, parameters and species references with a rate rule are state variables; those
  with an assignment rule are expressions substituted into the math; every other quantity
  (global parameters, compartment sizes, constant or boundary species, reaction-local
  parameters renamed ``<reaction>_<parameter>``) is a declared parameter of the system whose
  default is its value at the start (after initial assignments).
* Function definitions are inlined; reaction ids in math stand for their rates.
* A compartment whose size has a rule is an expression or a state variable; a concentration
  species changed by reactions inside it is integrated as its amount (its state column holds
  the amount, units ``"SBML amount"``), and its concentration is ``amount / size``.
* The diagram packages ``layout`` and ``render`` carry no simulation semantics and are ignored.

Refused with a :class:`~biohybrid.errors.UserError` naming the element: events, algebraic
rules, fast reactions, constraints, other SBML packages, ``delay()`` (covered by the delay
issue), ``rateOf``, stoichiometryMath, and MathML outside SBML's subset.

A parameter whose default comes from an initial assignment keeps the value computed at import:
overriding the parameters it was computed from does not recompute it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import libsbml
import numpy as np
import sympy
from numpy.typing import NDArray

from biohybrid.errors import UserError
from biohybrid.importers.codegen import compile_module, generate_module
from biohybrid.intracellular.system import OdeSystem
from biohybrid.params import Param, ParameterSet

AVOGADRO = 6.02214179e23  # the value SBML L3V1 fixes for the avogadro csymbol (spec §3.4.6)
TIME = sympy.Symbol("__time", real=True)
RATE_OF = sympy.Function("__rate_of", real=True)  # rateOf(x) until the ODEs are known


@dataclass(frozen=True)
class SbmlCache:
    """A directory that keeps generated code by the SHA-256 of the SBML file.

    Attributes:
        directory: Where ``<sha256>.json`` files are written; created on first use.
    """

    directory: Path

    def path(self, sha256: str) -> Path:
        """The cache file for a model with this hash."""
        return Path(self.directory) / f"{sha256}.json"

    def get(self, sha256: str) -> dict[str, Any] | None:
        """The stored description, or ``None`` if absent or unreadable."""
        try:
            return json.loads(self.path(sha256).read_text())
        except (OSError, ValueError):
            return None

    def put(self, sha256: str, description: dict[str, Any]) -> None:
        """Store a description (written to a temporary file, then renamed)."""
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(description))
        tmp.replace(target)


@dataclass(frozen=True)
class SbmlModel:
    """An imported SBML model.

    Attributes:
        system: The batched ODE system (state columns are :attr:`OdeSystem.species`).
        sha256: SHA-256 of the file's bytes.
        kinds: For every state variable and observable: ``"concentration"`` or ``"amount"``
            for species, else ``"parameter"``, ``"compartment"`` or ``"stoichiometry"``.
        compartment: The compartment id of every species.
        observe: ``observe(t, y, p) -> {id: (N,)}``: the value of every species, parameter
            and compartment of the model (assignment-rule variables included) at state ``y``.
        source: The generated Python module.
    """

    system: OdeSystem
    sha256: str
    kinds: Mapping[str, str]
    compartment: Mapping[str, str]
    observe: Callable[..., dict[str, NDArray[np.float64]]]
    source: str


def load_sbml(path: str | Path, cache: SbmlCache | None = None) -> OdeSystem:
    """Import an SBML file as a batched ODE system.

    Args:
        path: The SBML file (levels 2 and 3).
        cache: Optional :class:`SbmlCache`; the generated code is reused when the file's
            SHA-256 matches.

    Returns:
        The :class:`OdeSystem`; use :func:`read_sbml` for the observables as well.

    Raises:
        UserError: If the file cannot be read, is not valid SBML, or uses a feature this
            importer does not support (named with the element's id).
    """
    return read_sbml(path, cache).system


def read_sbml(path: str | Path, cache: SbmlCache | None = None) -> SbmlModel:
    """Import an SBML file; like :func:`load_sbml` but returns the full :class:`SbmlModel`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"Cannot read SBML file {str(path)!r}: {exc.strerror or exc}.") from None
    sha = hashlib.sha256(data).hexdigest()
    description = cache.get(sha) if cache is not None else None
    if description is None:
        description = _describe(data, str(path))
        if cache is not None:
            cache.put(sha, description)
    return _build(description, sha)


def _build(d: dict[str, Any], sha: str) -> SbmlModel:
    functions = compile_module(d["source"], d["name"])
    params = ParameterSet(
        {
            name: Param(float(value), units, description)
            for name, (value, units, description) in d["params"].items()
        },
        title=f"SBML model {d['name']!r}",
    )
    system = OdeSystem(
        name=d["name"],
        species=tuple(d["species"]),
        params=params,
        rhs=functions["rhs"],
        initial=dict(zip(d["species"], d["initial"], strict=True)),
        jac=functions["jac"],
        units=d["units"],
        autonomous=d["autonomous"],
    )
    return SbmlModel(
        system=system,
        sha256=sha,
        kinds=d["kinds"],
        compartment=d["compartment"],
        observe=functions["observe"],
        source=d["source"],
    )


# --------------------------------------------------------------------------- parsing


def _read_document(data: bytes, where: str) -> Any:
    doc = libsbml.readSBMLFromString(data.decode("utf-8", errors="replace"))
    errors = [
        doc.getError(i)
        for i in range(doc.getNumErrors())
        if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR
    ]
    if errors:
        first = errors[0]
        raise UserError(
            f"{where} is not valid SBML: line {first.getLine()}: {first.getMessage().strip()}"
            + (f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else "")
        )
    if doc.getModel() is None:
        raise UserError(f"{where} has no SBML <model> element.")
    return doc


# Packages without simulation semantics: libsbml's own L3V2 math plugin, diagram layout.
_HARMLESS_PACKAGES = frozenset({"l3v2extendedmath", "layout", "render"})


def _refuse(where: str, kind: str, ident: str, why: str) -> UserError:
    return UserError(f"{where}: {kind} {ident!r} is not supported: {why}.")


def _check_supported(doc: Any, where: str) -> None:
    model = doc.getModel()
    for i in range(doc.getNumPlugins()):
        name = doc.getPlugin(i).getPackageName()
        if doc.isPackageEnabled(name) and name not in _HARMLESS_PACKAGES:
            raise _refuse(where, "SBML package", name, "only SBML core is imported")
    for i in range(doc.getNumUnknownPackages()):
        raise _refuse(where, "SBML package", doc.getUnknownPackagePrefix(i), "unknown package")
    if model.getNumEvents():
        ev = model.getEvent(0)
        raise _refuse(
            where, "event", ev.getId() or "#1", "events are not supported yet (discontinuities)"
        )
    for rule in model.getListOfRules():
        if rule.isAlgebraic():
            raise _refuse(
                where, "algebraic rule", rule.getMetaId() or rule.getId() or "?", "needs a DAE"
            )
    if model.getNumConstraints():
        c = model.getConstraint(0)
        raise _refuse(where, "constraint", c.getMetaId() or "#1", "constraints are not checked yet")
    for r in model.getListOfReactions():
        if r.isSetFast() and r.getFast():
            raise _refuse(where, "fast reaction", r.getId(), "needs a quasi-steady-state solve")
        for sr in list(r.getListOfReactants()) + list(r.getListOfProducts()):
            if sr.isSetStoichiometryMath():
                raise _refuse(
                    where, "stoichiometryMath of reaction", r.getId(), "variable stoichiometry"
                )
        if not r.isSetKineticLaw() or not r.getKineticLaw().isSetMath():
            raise _refuse(where, "reaction without kinetic law", r.getId(), "it has no rate")


class _Translator:
    """MathML (libsbml ``ASTNode``) to sympy, with function definitions inlined."""

    def __init__(self, model: Any, where: str, symbols: dict[str, sympy.Symbol]):
        self.where = where
        self.symbols = symbols
        self.functions: dict[str, Any] = {
            fd.getId(): fd for fd in model.getListOfFunctionDefinitions()
        }
        self.context = ""

    def symbol(self, name: str, local: Mapping[str, sympy.Expr]) -> sympy.Expr:
        if name in local:
            return local[name]
        if name not in self.symbols:
            raise UserError(f"{self.where}: {self.context} uses an undefined name {name!r}.")
        return self.symbols[name]

    def __call__(
        self, node: Any, context: str, local: Mapping[str, sympy.Expr] | None = None
    ) -> sympy.Expr:
        self.context = context
        if node is None:
            raise UserError(f"{self.where}: {context} has no math.")
        return _num(self.expr(node, dict(local or {})))

    def expr(self, node: Any, local: dict[str, sympy.Expr]) -> Any:
        t = node.getType()
        kids = [self.expr(node.getChild(i), local) for i in range(node.getNumChildren())]
        if t in _LOGICAL:
            kids = [_bool(k) for k in kids]
        elif t != libsbml.AST_FUNCTION_PIECEWISE:
            kids = [_num(k) for k in kids]
        if t == libsbml.AST_INTEGER:
            return sympy.Integer(node.getInteger())
        if t in (libsbml.AST_REAL, libsbml.AST_REAL_E):
            value = node.getReal()
            if np.isnan(value):
                return sympy.nan
            if np.isinf(value):
                return sympy.oo if value > 0 else -sympy.oo
            return sympy.Float(value)
        if t == libsbml.AST_RATIONAL:
            return sympy.Rational(node.getNumerator(), node.getDenominator())
        if t == libsbml.AST_NAME:
            return self.symbol(node.getName(), local)
        if t == libsbml.AST_NAME_TIME:
            return TIME
        if t == libsbml.AST_NAME_AVOGADRO:
            return sympy.Float(AVOGADRO)
        if t == libsbml.AST_CONSTANT_E:
            return sympy.Float(np.e)  # a float, so that eq(p, exponentiale) holds for p = e
        if t == libsbml.AST_CONSTANT_PI:
            return sympy.Float(np.pi)
        if t == libsbml.AST_CONSTANT_TRUE:
            return sympy.true
        if t == libsbml.AST_CONSTANT_FALSE:
            return sympy.false
        if t == libsbml.AST_PLUS:
            return sympy.Add(*kids)
        if t == libsbml.AST_TIMES:
            return sympy.Mul(*kids)
        if t == libsbml.AST_MINUS:
            return -kids[0] if len(kids) == 1 else kids[0] - kids[1]
        if t == libsbml.AST_DIVIDE:
            return kids[0] / kids[1]
        if t in (libsbml.AST_POWER, libsbml.AST_FUNCTION_POWER):
            return kids[0] ** kids[1]
        if t == libsbml.AST_FUNCTION_ROOT:
            return kids[-1] ** (1 / kids[0]) if len(kids) == 2 else sympy.sqrt(kids[0])
        if t == libsbml.AST_FUNCTION_LOG:
            return sympy.log(kids[-1]) / sympy.log(kids[0] if len(kids) == 2 else 10)
        if t == libsbml.AST_FUNCTION_PIECEWISE:
            pieces = [(_num(kids[i]), _bool(kids[i + 1])) for i in range(0, len(kids) - 1, 2)]
            otherwise = _num(kids[-1]) if len(kids) % 2 else sympy.nan
            return sympy.Piecewise(*pieces, (otherwise, True))
        if t == libsbml.AST_FUNCTION:
            return self.call(node, kids)
        if t == libsbml.AST_FUNCTION_DELAY:
            raise _refuse(
                self.where, "delay() in", self.context, "delays are covered by the delay issue"
            )
        if t == libsbml.AST_FUNCTION_RATE_OF:
            if len(kids) != 1 or not isinstance(kids[0], sympy.Symbol) or kids[0] == TIME:
                raise _refuse(
                    self.where, "rateOf() in", self.context, "its argument must be a model id"
                )
            return RATE_OF(kids[0])
        simple = _SIMPLE.get(t)
        if simple is None:
            raise _refuse(
                self.where,
                f"MathML element <{node.getName() or node.getType()}> in",
                self.context,
                "outside the MathML subset this importer translates",
            )
        return simple(*kids)

    def call(self, node: Any, args: list[Any]) -> Any:
        name = node.getName()
        fd = self.functions.get(name)
        if fd is None or not fd.isSetMath():
            raise UserError(f"{self.where}: {self.context} calls an undefined function {name!r}.")
        lam = fd.getMath()
        nargs = lam.getNumBvars()
        if nargs != len(args):
            raise UserError(
                f"{self.where}: {self.context} calls {name!r} with {len(args)} arguments;"
                f" it takes {nargs}."
            )
        bound = {lam.getChild(i).getName(): args[i] for i in range(nargs)}
        # A function body sees only its arguments (SBML L3V1 §4.3.2), not model symbols.
        outer = self.symbols
        self.symbols = {}
        try:
            return self.expr(lam.getChild(nargs), bound)
        finally:
            self.symbols = outer


def _select_ast() -> dict[int, Callable[..., Any]]:
    def xor(*a: Any) -> Any:
        return sympy.Xor(*a)

    return {
        libsbml.AST_FUNCTION_ABS: sympy.Abs,
        libsbml.AST_FUNCTION_EXP: sympy.exp,
        libsbml.AST_FUNCTION_LN: sympy.log,
        libsbml.AST_FUNCTION_FLOOR: sympy.floor,
        libsbml.AST_FUNCTION_CEILING: sympy.ceiling,
        libsbml.AST_FUNCTION_FACTORIAL: lambda x: sympy.gamma(x + 1),
        libsbml.AST_FUNCTION_SIN: sympy.sin,
        libsbml.AST_FUNCTION_COS: sympy.cos,
        libsbml.AST_FUNCTION_TAN: sympy.tan,
        libsbml.AST_FUNCTION_SEC: lambda x: 1 / sympy.cos(x),
        libsbml.AST_FUNCTION_CSC: lambda x: 1 / sympy.sin(x),
        libsbml.AST_FUNCTION_COT: lambda x: sympy.cos(x) / sympy.sin(x),
        libsbml.AST_FUNCTION_SINH: sympy.sinh,
        libsbml.AST_FUNCTION_COSH: sympy.cosh,
        libsbml.AST_FUNCTION_TANH: sympy.tanh,
        libsbml.AST_FUNCTION_SECH: lambda x: 1 / sympy.cosh(x),
        libsbml.AST_FUNCTION_CSCH: lambda x: 1 / sympy.sinh(x),
        libsbml.AST_FUNCTION_COTH: lambda x: sympy.cosh(x) / sympy.sinh(x),
        libsbml.AST_FUNCTION_ARCSIN: sympy.asin,
        libsbml.AST_FUNCTION_ARCCOS: sympy.acos,
        libsbml.AST_FUNCTION_ARCTAN: sympy.atan,
        libsbml.AST_FUNCTION_ARCSEC: lambda x: sympy.acos(1 / x),
        libsbml.AST_FUNCTION_ARCCSC: lambda x: sympy.asin(1 / x),
        libsbml.AST_FUNCTION_ARCCOT: lambda x: sympy.atan(1 / x),
        libsbml.AST_FUNCTION_ARCSINH: sympy.asinh,
        libsbml.AST_FUNCTION_ARCCOSH: sympy.acosh,
        libsbml.AST_FUNCTION_ARCTANH: sympy.atanh,
        libsbml.AST_FUNCTION_ARCSECH: lambda x: sympy.acosh(1 / x),
        libsbml.AST_FUNCTION_ARCCSCH: lambda x: sympy.asinh(1 / x),
        libsbml.AST_FUNCTION_ARCCOTH: lambda x: sympy.atanh(1 / x),
        libsbml.AST_FUNCTION_MAX: sympy.Max,
        libsbml.AST_FUNCTION_MIN: sympy.Min,
        libsbml.AST_FUNCTION_QUOTIENT: lambda a, b: sympy.floor(a / b),
        libsbml.AST_FUNCTION_REM: lambda a, b: a - b * sympy.floor(a / b),
        libsbml.AST_LOGICAL_AND: sympy.And,
        libsbml.AST_LOGICAL_OR: sympy.Or,
        libsbml.AST_LOGICAL_XOR: xor,
        libsbml.AST_LOGICAL_NOT: sympy.Not,
        libsbml.AST_LOGICAL_IMPLIES: sympy.Implies,
        libsbml.AST_RELATIONAL_EQ: lambda *a: _chain(sympy.Eq, a),
        libsbml.AST_RELATIONAL_NEQ: lambda a, b: sympy.Ne(a, b),
        libsbml.AST_RELATIONAL_GT: lambda *a: _chain(sympy.StrictGreaterThan, a),
        libsbml.AST_RELATIONAL_GEQ: lambda *a: _chain(sympy.GreaterThan, a),
        libsbml.AST_RELATIONAL_LT: lambda *a: _chain(sympy.StrictLessThan, a),
        libsbml.AST_RELATIONAL_LEQ: lambda *a: _chain(sympy.LessThan, a),
    }


def _logical_types() -> frozenset[int]:
    return frozenset(
        {
            libsbml.AST_LOGICAL_AND,
            libsbml.AST_LOGICAL_OR,
            libsbml.AST_LOGICAL_XOR,
            libsbml.AST_LOGICAL_NOT,
            libsbml.AST_LOGICAL_IMPLIES,
        }
    )


def _is_bool(x: Any) -> bool:
    return isinstance(x, sympy.logic.boolalg.Boolean) and not isinstance(x, sympy.Symbol)


def _num(x: Any) -> Any:
    """A boolean used as a number is 1 or 0 (SBML L3V2 §3.4.9)."""
    return sympy.Piecewise((1, x), (0, True)) if _is_bool(x) else x


def _bool(x: Any) -> Any:
    """A number used as a boolean is true when it is not zero."""
    return x if _is_bool(x) else sympy.Ne(x, 0)


def _chain(rel: Any, args: tuple[Any, ...]) -> Any:
    return sympy.And(*(rel(args[i], args[i + 1]) for i in range(len(args) - 1)))


_SIMPLE: Mapping[int, Callable[..., Any]] = MappingProxyType(_select_ast())
_LOGICAL = _logical_types()


def _unit_text(model: Any, ident: str) -> str:
    """Readable units of an SBML units attribute: ``"mole*litre^-1"``, ``"1e-06 mole"``.

    ``"SBML units"`` when none is set or the id is not defined.
    """
    if not ident:
        return "SBML units"
    if libsbml.UnitKind_forName(ident) != libsbml.UNIT_KIND_INVALID:
        return ident
    ud = model.getUnitDefinition(ident)
    if ud is None or ud.getNumUnits() == 0:
        return "SBML units"
    factor = 1.0
    parts = []
    for u in ud.getListOfUnits():
        exponent = u.getExponentAsDouble()
        factor *= (u.getMultiplier() * 10.0 ** u.getScale()) ** exponent
        kind = libsbml.UnitKind_toString(u.getKind())
        if kind != "dimensionless":
            parts.append(kind if exponent == 1 else f"{kind}^{exponent:g}")
    text = "*".join(parts) or "1"
    return text if factor == 1 else f"{factor:g} {text}"


def _describe(data: bytes, where: str) -> dict[str, Any]:
    """Parse, translate and generate: the JSON-able description of one SBML file."""
    doc = _read_document(data, where)
    _check_supported(doc, where)
    model = doc.getModel()
    level = doc.getLevel()
    name = model.getId() or model.getName() or Path(where).stem

    species = {s.getId(): s for s in model.getListOfSpecies()}
    compartments = {c.getId(): c for c in model.getListOfCompartments()}
    parameters = {p.getId(): p for p in model.getListOfParameters()}
    reactions = list(model.getListOfReactions())
    stoich_refs = {
        sr.getId(): sr
        for r in reactions
        for sr in list(r.getListOfReactants()) + list(r.getListOfProducts())
        if sr.isSetId()
    }
    symbols = {
        ident: sympy.Symbol(ident, real=True)
        for ident in [*species, *compartments, *parameters, *stoich_refs]
    }
    reaction_symbols = {r.getId(): sympy.Symbol(r.getId(), real=True) for r in reactions}
    symbols.update(reaction_symbols)
    tr = _Translator(model, where, symbols)

    assigned: dict[str, sympy.Expr] = {}
    rates: dict[str, sympy.Expr] = {}
    for rule in model.getListOfRules():
        if not rule.isSetMath():
            continue  # L3V2 §4.11: a rule without math does not apply
        var = rule.getVariable()
        if var not in symbols or var in reaction_symbols:
            raise UserError(f"{where}: rule for {var!r}, which is not a model quantity.")
        expr = tr(rule.getMath(), f"the rule for {var!r}")
        (assigned if rule.isAssignment() else rates)[var] = expr
    rule_values = dict(assigned)  # the rules alone, for initial values
    # A compartment whose size has a rule: its reacting concentration species are integrated
    # as amounts (d amount/dt = sum of rates), their concentration is amount / size.
    variable = {cid for cid in compartments if cid in assigned or cid in rates}

    # Kinetic laws with reaction-local parameters renamed uniquely.
    locals_: dict[str, tuple[float, str, str]] = {}
    laws: dict[str, sympy.Expr] = {}
    taken = set(symbols)
    for r in reactions:
        kl = r.getKineticLaw()
        local: dict[str, sympy.Expr] = {}
        for i in range(kl.getNumParameters()):
            lp = kl.getParameter(i)
            new = f"{r.getId()}_{lp.getId()}"
            while new in taken:
                new += "_"
            taken.add(new)
            local[lp.getId()] = sympy.Symbol(new, real=True)
            if not lp.isSetValue():
                raise UserError(
                    f"{where}: local parameter {lp.getId()!r} of {r.getId()!r} has no value."
                )
            locals_[new] = (
                lp.getValue(),
                _unit_text(model, lp.getUnits()),
                f"local parameter {lp.getId()!r} of reaction {r.getId()!r}",
            )
        laws[r.getId()] = tr(kl.getMath(), f"the kinetic law of reaction {r.getId()!r}", local)

    # Reaction contributions to each species.
    change: dict[str, sympy.Expr] = {}
    model_cf = model.getConversionFactor() if level >= 3 and model.isSetConversionFactor() else ""
    for r in reactions:
        rate = reaction_symbols[r.getId()]
        for sign, refs in ((-1, r.getListOfReactants()), (1, r.getListOfProducts())):
            for sr in refs:
                sid = sr.getSpecies()
                s = species.get(sid)
                if s is None:
                    raise UserError(
                        f"{where}: reaction {r.getId()!r} uses unknown species {sid!r}."
                    )
                if s.getBoundaryCondition() or s.getConstant():
                    continue
                if sr.isSetId():
                    st = symbols[sr.getId()]
                elif sr.isSetStoichiometry() or level < 3:
                    st = sympy.Float(sr.getStoichiometry())
                else:
                    st = sympy.Integer(1)
                change[sid] = change.get(sid, sympy.Integer(0)) + sign * st * rate

    # Classify every quantity: assigned (rule), state (ODE) or parameter (constant in time).
    derivative: dict[str, sympy.Expr] = {}
    kinds: dict[str, str] = {}
    as_amount: list[str] = []
    for sid, s in species.items():
        kinds[sid] = "amount" if s.getHasOnlySubstanceUnits() else "concentration"
        if sid in assigned:
            continue
        if sid in rates:
            derivative[sid] = rates[sid]
        elif sid in change:
            cf = s.getConversionFactor() if level >= 3 and s.isSetConversionFactor() else model_cf
            d = change[sid] * (symbols[cf] if cf else 1)
            comp = s.getCompartment()
            if kinds[sid] == "concentration" and comp in variable:
                as_amount.append(sid)
            elif kinds[sid] == "concentration" and compartments[comp].getSpatialDimensions():
                d = d / symbols[comp]
            derivative[sid] = d
    for ident in [*parameters, *stoich_refs]:
        kinds[ident] = "parameter" if ident in parameters else "stoichiometry"
        if ident in rates:
            derivative[ident] = rates[ident]
    for cid in compartments:
        kinds[cid] = "compartment"
        if cid in rates:
            derivative[cid] = rates[cid]
    state = list(derivative)
    constants = [
        ident
        for ident in [*compartments, *parameters, *species, *stoich_refs]
        if ident not in assigned and ident not in derivative
    ]

    # Substitute assignment rules and reaction rates (SBML forbids cycles among them).
    resolved: dict[str, sympy.Expr] = {}

    def resolve(ident: str, stack: tuple[str, ...] = ()) -> sympy.Expr:
        if ident in resolved:
            return resolved[ident]
        if ident in stack:
            raise UserError(f"{where}: assignment rules form a cycle: {' -> '.join(stack)}.")
        raw = assigned[ident] if ident in assigned else laws[ident]
        expr = full(raw, (*stack, ident))
        resolved[ident] = expr
        return expr

    def full(expr: Any, stack: tuple[str, ...] = ()) -> Any:
        repl = {
            sym: resolve(str(sym), stack)
            for sym in expr.free_symbols
            if str(sym) in assigned or str(sym) in laws
        }
        return expr.xreplace(repl) if repl else expr

    amount_start: dict[Any, Any] = {}
    state_symbol = {ident: symbols[ident] for ident in state}
    for sid in as_amount:
        amount = sympy.Symbol(f"__amount_{sid}", real=True)
        size = symbols[species[sid].getCompartment()]
        amount_start[amount] = symbols[sid] * size
        state_symbol[sid] = amount
        assigned[sid] = amount / size
    # A concentration species that nothing changes, in a compartment whose size changes,
    # keeps its amount (SBML L3V1 §4.6.6): its declared parameter is that amount.
    const_amount: dict[str, sympy.Symbol] = {}
    for sid in constants:
        s_ = species.get(sid)
        if s_ is not None and kinds[sid] == "concentration" and s_.getCompartment() in variable:
            amount = sympy.Symbol(f"__amount_{sid}", real=True)
            size = symbols[s_.getCompartment()]
            amount_start[amount] = symbols[sid] * size
            const_amount[sid] = amount
            assigned[sid] = amount / size
    rates_of_state = {state_symbol[s]: full(derivative[s]) for s in state}

    def expand_rates(expr: Any) -> Any:
        """Replace rateOf(x) by dx/dt = sum of dx/dy_i f_i + dx/dt (chain rule)."""
        expr = full(expr)
        for _ in range(8):
            found = [a for a in expr.atoms(sympy.Function) if a.func == RATE_OF]
            if not found:
                return expr
            expr = expr.xreplace(
                {
                    r: sympy.diff(r.args[0], TIME)
                    + sum(
                        (sympy.diff(r.args[0], y) * f for y, f in rates_of_state.items()),
                        sympy.Integer(0),
                    )
                    for r in found
                }
            )
        raise UserError(f"{where}: rateOf() nests more than 8 deep.")

    derivatives = [expand_rates(derivative[s]) for s in state]
    observables = [*species, *compartments, *parameters]
    observed = [expand_rates(symbols[o]) for o in observables]

    # Initial values: numeric evaluation of initial assignments, values and rules at t = 0.
    initial_expr: dict[str, Any] = {}
    for ia in model.getListOfInitialAssignments():
        if not ia.isSetMath():
            continue  # L3V2 §4.10: an initial assignment without math does not apply
        var = ia.getSymbol()
        if var not in symbols or var in reaction_symbols:
            raise UserError(f"{where}: initial assignment to {var!r}, not a model quantity.")
        initial_expr[var] = tr(ia.getMath(), f"the initial assignment to {var!r}")
    for ident, expr in rule_values.items():
        initial_expr[ident] = expr
    for rid, law in laws.items():
        initial_expr[rid] = law
    values: dict[Any, float] = {TIME: 0.0}
    for name_, (v, _, _) in locals_.items():
        values[sympy.Symbol(name_, real=True)] = v
    for ident in symbols:
        if ident in initial_expr or ident in reaction_symbols:
            continue
        if ident in species:
            s = species[ident]
            comp = symbols[s.getCompartment()]
            if s.isSetInitialConcentration():
                initial_expr[ident] = (
                    sympy.Float(s.getInitialConcentration()) * comp
                    if kinds[ident] == "amount"
                    else sympy.Float(s.getInitialConcentration())
                )
            elif s.isSetInitialAmount():
                dims = compartments[s.getCompartment()].getSpatialDimensions()
                initial_expr[ident] = (
                    sympy.Float(s.getInitialAmount()) / comp
                    if kinds[ident] == "concentration" and dims != 0
                    else sympy.Float(s.getInitialAmount())
                )
        elif ident in compartments:
            c = compartments[ident]
            if c.isSetSize():
                values[symbols[ident]] = c.getSize()
            elif level < 3 or c.getSpatialDimensions() == 0:
                values[symbols[ident]] = 1.0  # L2 default size (L2V4 §4.7.5)
        elif ident in parameters:
            if parameters[ident].isSetValue():
                values[symbols[ident]] = parameters[ident].getValue()
        else:
            sr = stoich_refs[ident]
            values[symbols[ident]] = sr.getStoichiometry() if sr.isSetStoichiometry() else 1.0
    pending = {symbols[i]: e for i, e in initial_expr.items()} | amount_start
    for target, expr in pending.items():
        if any(a.func == RATE_OF for a in sympy.sympify(expr).atoms(sympy.Function)):
            pending[target] = expand_rates(expr)
    progress = True
    while pending and progress:
        progress = False
        for target, expr in list(pending.items()):
            sub = sympy.sympify(sympy.sympify(expr).xreplace(values))
            if not sub.free_symbols:
                try:
                    values[target] = float(sub.evalf()) if sub != sympy.nan else np.nan
                except TypeError as exc:
                    raise UserError(
                        f"{where}: the initial value of {str(target)!r} is not a number ({sub})."
                    ) from exc
                del pending[target]
                progress = True
    unknown = [
        i for i in [*state, *constants] if symbols[i] not in values and i not in reaction_symbols
    ]
    if unknown:
        raise UserError(
            f"{where}: cannot determine the initial value of {', '.join(sorted(unknown))}."
        )

    # Non-finite constants (INF, NaN are valid SBML values) are inlined, not declared.
    fixed = {
        symbols[i]: sympy.Float(values[symbols[i]])
        for i in constants
        if not np.isfinite(values[symbols[i]])
    }
    if fixed:
        derivatives = [e.xreplace(fixed) for e in derivatives]
        observed = [e.xreplace(fixed) for e in observed]
        constants = [i for i in constants if symbols[i] not in fixed]
    used = set().union(*(e.free_symbols for e in [*derivatives, *observed]), set())
    params: dict[str, tuple[float, str, str]] = {}
    param_symbol: dict[str, sympy.Symbol] = {}
    declared: set[str] = set(symbols) | set(locals_)

    def declare(ident: str, symbol: sympy.Symbol, entry: tuple[float, str, str]) -> None:
        # Declared parameter names cannot start with "_" (pydantic fields); rename those.
        name_ = ident
        if name_.startswith("_"):
            name_ = "sbml" + name_
            while name_ in declared:
                name_ += "_"
            declared.add(name_)
            entry = (entry[0], entry[1], f"{entry[2]}; SBML id {ident!r}")
        params[name_] = entry
        param_symbol[name_] = symbol

    for ident in constants:
        el = species.get(ident) or compartments.get(ident) or parameters.get(ident)
        if ident in stoich_refs:
            units, desc = "1", "stoichiometry (species reference)"
        elif ident in species:
            units = "SBML units"
            desc = f"constant species {kinds[ident]}"
        else:
            units = _unit_text(model, el.getUnits() if el.isSetUnits() else "")
            desc = f"SBML {kinds[ident]}"
        if el is not None and el.isSetName():
            desc += f" ({el.getName()})"
        if ident in const_amount:
            symbol = const_amount[ident]
            units, desc = "SBML amount", f"amount of constant species {ident!r}"
        else:
            symbol = symbols[ident]
        declare(ident, symbol, (values[symbol], units, desc))
    for local_name, entry in locals_.items():
        if sympy.Symbol(local_name, real=True) in used:
            declare(local_name, sympy.Symbol(local_name, real=True), entry)

    def species_units(sid: str) -> str:
        sp = species[sid]
        sub = sp.getSubstanceUnits() or (model.getSubstanceUnits() if level >= 3 else "")
        sub_text = _unit_text(model, sub) if sub else ""
        comp = compartments[sp.getCompartment()]
        vol_text = _unit_text(model, comp.getUnits()) if comp.isSetUnits() else ""
        if not sub_text or sub_text == "SBML units":
            return "SBML amount" if sid in as_amount else f"SBML {kinds[sid]}"
        if kinds[sid] == "amount" or sid in as_amount:
            return sub_text
        if not vol_text or vol_text == "SBML units":
            return f"SBML {kinds[sid]}"

        def wrap(text: str) -> str:
            return f"({text})" if any(c in text for c in " *^") else text

        return f"{wrap(sub_text)}/{wrap(vol_text)}"

    units_out = {s: species_units(s) for s in state if s in species}
    for ident, (v, _, _) in locals_.items():
        if not np.isfinite(v):
            raise UserError(f"{where}: the value of {ident!r} is {v}, not a finite number.")

    source = generate_module(
        state=[state_symbol[s] for s in state],
        params=param_symbol,
        time=TIME,
        derivatives=derivatives,
        observables=dict(zip(observables, observed, strict=True)),
    )
    return {
        "name": name,
        "species": state,
        "initial": [values[state_symbol[s]] for s in state],
        "params": params,
        "units": units_out,
        "autonomous": TIME not in used,
        "kinds": kinds,
        "compartment": {sid: s.getCompartment() for sid, s in species.items()},
        "source": source,
    }
