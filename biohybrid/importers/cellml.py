"""CellML import: a CellML 1.0/1.1/2.0 file as a batched :class:`OdeSystem`.

Parsing, validation and unit conversion between connected variables are done by myokit
(chosen because it is maintained, reads all three CellML versions, converts units on import
and keeps the Chaste ``oxford-metadata`` annotations as each variable's ``oxmeta`` meta
property). From myokit's model this module generates one vectorised NumPy right-hand side
over ``(N, k)``:

* states keep the units the file declares (:attr:`OdeSystem.units`);
* every literal constant becomes a declared parameter (its units and default from the file),
  so any of them can be given per cell as an ``(N,)`` array;
* the oxmeta annotations give standard names: :attr:`CellmlInfo.voltage` is the species of
  ``membrane_voltage``, :attr:`CellmlInfo.conductances` maps ``"g_Kr"`` etc. to the
  parameter that holds that conductance, :attr:`CellmlInfo.stimulus` maps ``"amplitude"``,
  ``"period"``, ``"duration"``, ``"offset"`` to the stimulus parameters;
* the stimulus current is the file's own protocol (``stimulus="file"``), an external input
  column ``"i_stim"`` the engine drives (``stimulus="input"``), or zero (``"off"``);
* states whose derivative is affine in themselves with coefficients independent of them
  (``dx/dt = (x_inf - x)/tau`` or ``alpha (1 - x) - beta x``) are listed as gates, with a
  vectorised :attr:`CellmlInfo.gate_values` giving ``(x_inf, tau)`` for a Rush-Larsen step.

The Jacobian is analytic: each equation's partial derivatives come from myokit's symbolic
``diff``, combined by the chain rule in dependency order (forward mode, sparse per-state
gradients). Where myokit cannot differentiate a construct the system has ``jac=None`` and
the stepper falls back to finite differences (:attr:`CellmlInfo.jacobian` says which).
"""

from __future__ import annotations

import graphlib
import hashlib
import keyword
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from biohybrid.errors import UserError, list_choices
from biohybrid.intracellular.system import OdeSystem
from biohybrid.params import Param, ParameterSet

__all__ = ["CONDUCTANCES", "STIMULUS", "CellmlInfo", "load_cellml"]

#: Standard conductance names -> oxmeta terms (Chaste's ``oxford-metadata`` ontology).
CONDUCTANCES: Mapping[str, str] = MappingProxyType(
    {
        "g_Na": "membrane_fast_sodium_current_conductance",
        "g_NaL": "membrane_persistent_sodium_current_conductance",
        "g_CaL": "membrane_L_type_calcium_current_conductance",
        "g_Kr": "membrane_rapid_delayed_rectifier_potassium_current_conductance",
        "g_Ks": "membrane_slow_delayed_rectifier_potassium_current_conductance",
        "g_K": "membrane_delayed_rectifier_potassium_current_conductance",
        "g_K1": "membrane_inward_rectifier_potassium_current_conductance",
        "g_to": "membrane_transient_outward_current_conductance",
        "g_to_fast": "membrane_fast_transient_outward_current_conductance",
        "g_to_slow": "membrane_slow_transient_outward_current_conductance",
        "g_Kur": "membrane_ultrarapid_delayed_rectifier_potassium_current_conductance",
        "g_NaCa": "membrane_sodium_calcium_exchanger_current_conductance",
        "g_NaK": "membrane_sodium_potassium_pump_current_permeability",
        "g_bNa": "membrane_background_sodium_current_conductance",
        "g_bCa": "membrane_background_calcium_current_conductance",
        "g_bK": "membrane_background_potassium_current_conductance",
        "g_bCl": "membrane_background_chloride_current_conductance",
        "g_pCa": "membrane_calcium_pump_current_conductance",
        "g_pK": "membrane_potassium_pump_current_conductance",
        "g_f_K": (
            "membrane_hyperpolarisation_activated_funny_current_potassium_component_conductance"
        ),
        "g_f_Na": "membrane_hyperpolarisation_activated_funny_current_sodium_component_conductance",
        "g_KATP": "membrane_atp_dependent_potassium_current_conductance",
        "g_Kss": "membrane_non_inactivating_steady_state_potassium_current_conductance",
        "g_Kp": "membrane_plateau_potassium_current_conductance",
        "g_leak": "membrane_leakage_current_conductance",
    }
)

#: Stimulus parameter roles -> oxmeta terms.
STIMULUS: Mapping[str, str] = MappingProxyType(
    {
        "amplitude": "membrane_stimulus_current_amplitude",
        "duration": "membrane_stimulus_current_duration",
        "period": "membrane_stimulus_current_period",
        "offset": "membrane_stimulus_current_offset",
        "end": "membrane_stimulus_current_end",
    }
)

_STIMULUS_MODES = ("file", "input", "off")
_VOLTAGE = "membrane_voltage"
_STIM_CURRENT = "membrane_stimulus_current"


@dataclass(frozen=True)
class CellmlInfo:
    """What the importer found in a CellML file, by standard name.

    Attributes:
        path: The file read.
        sha256: SHA-256 of the file's bytes (for the run manifest).
        model_name: The model's name in the file.
        time_unit: Unit of the model's time variable (the OdeSystem's time unit).
        voltage: Species name of the annotated membrane voltage, or ``None``.
        stimulus_mode: ``"file"``, ``"input"`` or ``"off"``.
        stimulus: Stimulus roles (``amplitude``, ``duration``, ``period``, ``offset``,
            ``end``) -> parameter names, for those the file annotates as constants.
        conductances: Standard conductance names (keys of :data:`CONDUCTANCES`) ->
            parameter names. A conductance annotated on a derived variable is reached
            through its ``..._scaling_factor`` annotation when that is a constant.
        oxmeta: Every oxmeta term -> the myokit qualified name of the annotated variable.
        names: Species and parameter names -> myokit qualified names.
        gates: Gating species -> ``(x_inf, tau)`` as myokit expression text.
        gate_values: ``gate_values(t, y, p, u) -> (x_inf, tau)``, both ``(N, g)`` with
            columns in :attr:`gates` order.
        jacobian: ``"analytic"`` (chain rule over myokit's symbolic partial derivatives),
            or ``"finite differences (reason)"`` when that failed and ``jac`` is ``None``.
        myokit_model: The myokit model the code was generated from.
    """

    path: str
    sha256: str
    model_name: str
    time_unit: str
    voltage: str | None
    stimulus_mode: str
    stimulus: Mapping[str, str]
    conductances: Mapping[str, str]
    oxmeta: Mapping[str, str]
    names: Mapping[str, str]
    gates: Mapping[str, tuple[str, str]]
    gate_values: Callable[..., tuple[NDArray[np.float64], NDArray[np.float64]]]
    jacobian: str
    myokit_model: Any = field(repr=False)


def _unit_text(unit: Any) -> str:
    if unit is None:
        return "1"
    text = str(unit).strip("[]")
    return text or "1"


def _identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = "v_" + name
    return name


def _read(path: Path) -> Any:
    """Parse ``path`` with myokit, every problem a :class:`UserError`."""
    import myokit
    import myokit.formats

    if not path.is_file():
        raise UserError(f"CellML file {str(path)!r} does not exist or is not a file")
    head = path.read_bytes()[:4096].decode("utf-8", "replace")
    if "cellml" not in head.lower():
        raise UserError(
            f"{str(path)!r} is not a CellML file: no CellML namespace in its first 4 kB"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = myokit.formats.importer("cellml").model(str(path))
        except Exception as exc:  # myokit raises several types, all meaning "bad file"
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise UserError(f"CellML file {str(path)!r} could not be imported: {reason}") from None
    for w in caught:
        text = " ".join(str(w.message).split())
        if "unit conversion factor" in text:
            raise UserError(f"CellML file {str(path)!r}: unresolvable units: {text}")
    try:
        model.validate()
    except Exception as exc:
        reason = " ".join(str(exc).split())
        raise UserError(f"CellML file {str(path)!r} is not a valid model: {reason}") from None
    if model.count_states() == 0:
        raise UserError(f"CellML file {str(path)!r} has no state variables (no ODEs)")
    return model


_OXMETA_NS = "oxford-metadata#"
_CMETA_ID = "{http://www.cellml.org/metadata/1.0#}id"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"


def _oxmeta_from_xml(path: Path) -> dict[str, tuple[str, str]]:
    """Oxmeta terms -> ``(component, variable)`` from every RDF block of the file.

    myokit reads model-level RDF only; some Chaste files put the RDF inside the variable
    element, so the annotations are collected here from anywhere in the document.
    """
    from lxml import etree

    try:
        root = etree.parse(str(path)).getroot()
    except etree.XMLSyntaxError:
        return {}
    where: dict[str, tuple[str, str]] = {}
    for el in root.iter():
        cid = el.get(_CMETA_ID)
        parent = el.getparent()
        if cid and isinstance(el.tag, str) and el.tag.endswith("}variable") and parent is not None:
            where[cid] = (parent.get("name", ""), el.get("name", ""))
    found: dict[str, tuple[str, str]] = {}
    for desc in root.iter(_RDF + "Description"):
        about = (desc.get(_RDF + "about") or "").lstrip("#")
        if about not in where:
            continue
        for child in desc:
            resource = child.get(_RDF + "resource") or ""
            if _OXMETA_NS in resource:
                found.setdefault(resource.split("#", 1)[1], where[about])
    return found


def _linear(e: Any, x: Any) -> tuple[Any, Any] | None:
    """Split ``e`` as ``a + b*x`` (``None`` for a zero part), or ``None`` if not affine."""
    import myokit

    if not e.depends_on(x):
        return e, None
    if e == x:
        return None, myokit.Number(1)

    def add(p: Any, q: Any, minus: bool = False) -> Any:
        if q is None:
            return p
        if p is None:
            return myokit.PrefixMinus(q) if minus else q
        return myokit.Minus(p, q) if minus else myokit.Plus(p, q)

    def scale(c: Any, q: Any, op: type) -> Any:
        if q is None:
            return None
        return op(q, c) if op is myokit.Divide else op(c, q)

    if isinstance(e, myokit.PrefixPlus):
        return _linear(e[0], x)
    if isinstance(e, myokit.PrefixMinus):
        inner = _linear(e[0], x)
        if inner is None:
            return None
        return add(None, inner[0], True), add(None, inner[1], True)
    if isinstance(e, (myokit.Plus, myokit.Minus)):
        left, right = _linear(e[0], x), _linear(e[1], x)
        if left is None or right is None:
            return None
        minus = isinstance(e, myokit.Minus)
        return add(left[0], right[0], minus), add(left[1], right[1], minus)
    if isinstance(e, myokit.Multiply):
        left, right = _linear(e[0], x), _linear(e[1], x)
        if left is None or right is None:
            return None
        if left[1] is None:
            return scale(e[0], right[0], myokit.Multiply), scale(e[0], right[1], myokit.Multiply)
        if right[1] is None:
            return scale(e[1], left[0], myokit.Multiply), scale(e[1], left[1], myokit.Multiply)
        return None
    if isinstance(e, myokit.Divide) and not e[1].depends_on(x):
        top = _linear(e[0], x)
        if top is None:
            return None
        return scale(e[1], top[0], myokit.Divide), scale(e[1], top[1], myokit.Divide)
    return None


def _general_powers(e: Any) -> Any:
    """``a^b`` with a non-literal exponent as ``exp(b log a)``, for differentiation only.

    myokit 1.39's ``Power`` derivative with respect to the exponent divides by ``log(a)``
    where it should multiply (seen in iribe_model_2006, whose RyR rate has a CaMK-dependent
    Hill coefficient); the exponential form is differentiated correctly.
    """
    import myokit

    for _ in range(64):  # nested powers: outermost first, then what they contain
        powers = {
            q: myokit.Exp(myokit.Multiply(q[1], myokit.Log(q[0])))
            for q in e.walk(myokit.Power)
            if not isinstance(q[1], myokit.Number)
        }
        if not powers:
            break
        e = e.clone(subst=powers)
    return e


def _jacobian_source(
    order: list[str],
    nodes: Mapping[str, tuple[Any, Any]],
    states: list[Any],
    deriv: Mapping[Any, str],
    local: Mapping[Any, str],
    lhs_name: Callable[[Any], str],
    writer: Any,
    body: str,
    skip: Any,
) -> tuple[str | None, str]:
    """Source of ``jac(t, y, p, u)`` by forward-mode chain rule, or ``(None, reason)``.

    Each equation's partial derivatives with respect to the names it references come from
    myokit's symbolic ``diff`` (other names held fixed); the gradient of every intermediate
    with respect to the states is accumulated in dependency order, sparsely.
    """
    grads: dict[str, dict[int, str | None]] = {local[v]: {i: None} for i, v in enumerate(states)}
    lines: list[str] = []
    try:
        for key in order:
            var, rhs = nodes[key]
            if skip is not None and var is skip and key == local.get(var):
                grads[key] = {}
                continue
            for _ in range(len(states) + 1):  # inline dot(x) used as a value: x's rhs
                dots = {r: nodes[lhs_name(r)][1] for r in rhs.references() if r.is_derivative()}
                if not dots:
                    break
                rhs = rhs.clone(subst=dots)
            rhs = _general_powers(rhs)
            acc: dict[int, list[str]] = {}
            for j, ref in enumerate(sorted(rhs.references(), key=str)):
                sup = grads.get(lhs_name(ref))
                if not sup:
                    continue
                q = f"q_{key}_{j}"
                lines.append(f"        {q} = {writer.ex(rhs.diff(ref, independent_states=True))}")
                for c, g in sup.items():
                    acc.setdefault(c, []).append(q if g is None else f"{q} * {g}")
            grads[key] = {}
            for c, terms in acc.items():
                g = f"g_{key}_{c}"
                lines.append(f"        {g} = " + " + ".join(terms))
                grads[key][c] = g
    except Exception as exc:  # myokit cannot differentiate some construct
        return None, " ".join(str(exc).split())[:200] or type(exc).__name__
    out = [f"    jac = numpy.zeros((y.shape[0], {len(states)}, {len(states)}))"]
    for i, v in enumerate(states):
        for c, g in grads[deriv[v]].items():
            out.append(f"    jac[:, {i}, {c}] = {'1.0' if g is None else g}")
    return (
        "def jac(t, y, p, u):\n"
        + body
        + "\n"
        + "\n".join(lines)
        + "\n"
        + "\n".join(out)
        + "\n    return jac\n",
        "",
    )


def load_cellml(
    path: str | Path, *, stimulus: str = "file", name: str | None = None
) -> tuple[OdeSystem, CellmlInfo]:
    """Import a CellML file as a batched :class:`OdeSystem`.

    Args:
        path: The CellML file (1.0, 1.1 or 2.0).
        stimulus: ``"file"`` keeps the file's own stimulus protocol (a function of time and
            of the stimulus parameters); ``"input"`` replaces the annotated stimulus current
            by the input column ``"i_stim"`` (in the current's units); ``"off"`` sets it
            to zero. The stimulus parameters stay declared in every mode.
        name: Name of the system (default: the file's stem).

    Returns:
        ``(system, info)``: the system (with its analytic Jacobian, or ``jac=None`` when
        myokit could not differentiate an equation) and what was found in the file, by
        standard name.

    Raises:
        UserError: Missing or malformed file, a file that is not CellML, unresolvable
            units, an invalid model, an unknown ``stimulus`` mode, or ``stimulus="input"``
            / ``"off"`` on a model without an annotated stimulus current.
    """
    import myokit
    from myokit.formats.python import NumPyExpressionWriter

    if stimulus not in _STIMULUS_MODES:
        raise UserError(
            f"unknown stimulus mode {stimulus!r}; choices: {list_choices(_STIMULUS_MODES)}"
        )
    path = Path(path)
    model = _read(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    title = name or _identifier(path.stem)

    time_var = model.time()
    states = list(model.states())
    variables = list(model.variables(deep=True))
    literals = [v for v in variables if v.is_literal() and not v.is_state() and v is not time_var]
    literal_set = set(literals)
    inter = [
        v for v in variables if not v.is_state() and v is not time_var and v not in literal_set
    ]

    # Public names: the variable's own name, qualified by its component when not unique.
    public = states + literals
    counts: dict[str, int] = {}
    for v in public:
        counts[v.name()] = counts.get(v.name(), 0) + 1
    names: dict[Any, str] = {}
    for v in public:
        base = v.name() if counts[v.name()] == 1 else v.qname().replace(".", "_")
        candidate = _identifier(base)
        while candidate in names.values():
            candidate += "_"
        names[v] = candidate

    oxmeta = {v.meta["oxmeta"]: v for v in variables if "oxmeta" in v.meta}
    for term, (comp, var) in _oxmeta_from_xml(path).items():
        if term not in oxmeta and model.has_component(comp) and model[comp].has_variable(var):
            oxmeta[term] = model[comp][var]
    stim_var = oxmeta.get(_STIM_CURRENT)
    if stimulus != "file" and (stim_var is None or stim_var.is_state() or stim_var.is_literal()):
        raise UserError(
            f"CellML file {str(path)!r}: stimulus={stimulus!r} needs an annotated stimulus"
            f" current ({_STIM_CURRENT}), and the file has none that is computed"
        )

    # Local code names.
    local: dict[Any, str] = {time_var: "t_"}
    for i, v in enumerate(states):
        local[v] = f"s{i}"
    for i, v in enumerate(literals):
        local[v] = f"p{i}"
    for i, v in enumerate(inter):
        local[v] = f"v{i}"
    deriv = {v: f"d{i}" for i, v in enumerate(states)}

    def lhs_name(lhs: Any) -> str:
        if isinstance(lhs, myokit.Derivative):
            return deriv[lhs.var()]
        return local[lhs.var()]

    writer = NumPyExpressionWriter()
    writer.set_lhs_function(lhs_name)

    class _PartialWriter(NumPyExpressionWriter):
        """Writes ``d(other)/d(ref)`` as zero: other names are held fixed (chain rule)."""

        def _ex_partial_derivative(self, e: Any) -> str:
            return "0.0"

    jac_writer = _PartialWriter()
    jac_writer.set_lhs_function(lhs_name)

    # Equations in dependency order: intermediates and derivatives.
    nodes: dict[str, tuple[Any, Any]] = {}
    for v in inter:
        nodes[local[v]] = (v, v.rhs())
    for v in states:
        nodes[deriv[v]] = (v, v.rhs())
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for key, (_, rhs) in nodes.items():
        deps = []
        for ref in rhs.references():
            target = lhs_name(ref)
            if target in nodes:
                deps.append(target)
        sorter.add(key, *deps)
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        raise UserError(
            f"CellML file {str(path)!r}: cyclic equations (an algebraic loop): {exc.args[1]}"
        ) from None

    lines = []
    for key in order:
        var, rhs = nodes[key]
        if var is stim_var and key == local.get(var) and stimulus == "input":
            code = "u[:, 0]"
        elif var is stim_var and key == local.get(var) and stimulus == "off":
            code = "0.0"
        else:
            code = writer.ex(rhs)
        lines.append(f"        {key} = {code}")

    head = ["    t_ = t"]
    head += [f"    {local[v]} = y[:, {i}]" for i, v in enumerate(states)]
    head += [f"    {local[v]} = p[{names[v]!r}]" for v in literals]
    head.append("    with numpy.errstate(all='ignore'):")
    body = "\n".join(head + (lines or ["        pass"]))

    out = [f"    out[:, {i}] = {deriv[v]}" for i, v in enumerate(states)]
    src_rhs = (
        "def rhs(t, y, p, u):\n"
        + body
        + "\n    out = numpy.empty(y.shape)\n"
        + "\n".join(out)
        + "\n    return out\n"
    )

    # Gates: derivative affine in the state, no other reference depending on it.
    closure: dict[str, frozenset[Any]] = {}
    for key in order:
        var, rhs = nodes[key]
        found: set[Any] = set()
        for ref in rhs.references():
            target = lhs_name(ref)
            if target in closure:
                found |= closure[target]
            elif ref.var() in deriv and not isinstance(ref, myokit.Derivative):
                found.add(ref.var())
        if key in deriv.values():
            found.add(("d", var))
        closure[key] = frozenset(found)
    gates: dict[str, tuple[str, str]] = {}
    gate_exprs: list[tuple[str, str]] = []
    for v in states:
        rhs = v.rhs()
        x = myokit.Name(v)
        if any(
            v in closure.get(lhs_name(ref), ())
            for ref in rhs.references()
            if lhs_name(ref) in nodes
        ):
            continue
        parts = _linear(rhs, x)
        if parts is None or parts[1] is None:
            continue
        a, b = parts
        tau = myokit.Divide(myokit.Number(-1), b)
        inf = myokit.Number(0) if a is None else myokit.Divide(myokit.PrefixMinus(a), b)
        gates[names[v]] = (inf.code(), tau.code())
        gate_exprs.append((writer.ex(inf), writer.ex(tau)))

    gate_lines = [
        f"    inf[:, {j}] = {i_code}\n    tau[:, {j}] = {t_code}"
        for j, (i_code, t_code) in enumerate(gate_exprs)
    ]
    src_gates = (
        "def gate_values(t, y, p, u):\n"
        + body
        + f"\n        inf = numpy.empty((y.shape[0], {len(gate_exprs)}))"
        + f"\n        tau = numpy.empty((y.shape[0], {len(gate_exprs)}))\n"
        + "\n".join("    " + line.replace("\n", "\n    ") for line in gate_lines)
        + "\n    return inf, tau\n"
    )
    src_jac, jac_error = _jacobian_source(
        order,
        nodes,
        states,
        deriv,
        local,
        lhs_name,
        jac_writer,
        body=body,
        skip=stim_var if stimulus != "file" else None,
    )
    namespace: dict[str, Any] = {"numpy": np}
    if src_jac is not None:
        exec(compile(src_jac, f"<cellml jac {path.name}>", "exec"), namespace)
    exec(compile(src_rhs, f"<cellml rhs {path.name}>", "exec"), namespace)
    exec(compile(src_gates, f"<cellml gates {path.name}>", "exec"), namespace)

    # Declared parameters and standard names.
    term_of = {v: term for term, v in oxmeta.items()}
    params = ParameterSet(
        {
            names[v]: Param(
                default=float(v.eval()),
                units=_unit_text(v.unit()),
                description=v.qname() + (f" (oxmeta {term_of[v]})" if v in term_of else ""),
                source=f"CellML file {path.name}",
            )
            for v in literals
        },
        title=f"CellML model {title!r}",
    )

    def param_of(term: str) -> str | None:
        v = oxmeta.get(term)
        return names[v] if v is not None and v in literal_set else None

    conductances: dict[str, str] = {}
    for std, term in CONDUCTANCES.items():
        found = param_of(term) or param_of(term + "_scaling_factor")
        if found is not None:
            conductances[std] = found
    stim = {role: p for role, term in STIMULUS.items() if (p := param_of(term)) is not None}
    voltage_var = oxmeta.get(_VOLTAGE)
    voltage = names[voltage_var] if voltage_var is not None and voltage_var.is_state() else None

    time_dependent = any(
        time_var in {ref.var() for ref in rhs.references()}
        for key, (var, rhs) in nodes.items()
        if not (var is stim_var and stimulus != "file")
    )
    system = OdeSystem(
        name=title,
        species=tuple(names[v] for v in states),
        params=params,
        rhs=namespace["rhs"],
        initial={names[v]: float(v.initial_value(as_float=True)) for v in states},
        inputs=("i_stim",) if stimulus == "input" else (),
        jac=namespace.get("jac"),
        units={names[v]: _unit_text(v.unit()) for v in states},
        autonomous=not time_dependent,
    )
    info = CellmlInfo(
        path=str(path),
        sha256=sha,
        model_name=model.name(),
        time_unit=_unit_text(time_var.unit()),
        voltage=voltage,
        stimulus_mode=stimulus,
        stimulus=stim,
        conductances=conductances,
        oxmeta={term: v.qname() for term, v in oxmeta.items()},
        names={names[v]: v.qname() for v in public},
        gates=gates,
        gate_values=namespace["gate_values"],
        jacobian="analytic" if src_jac is not None else f"finite differences ({jac_error})",
        myokit_model=model,
    )
    return system, info
