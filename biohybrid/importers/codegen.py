"""Print sympy right-hand sides as one vectorised numpy module, with an analytic Jacobian.

The generated module defines ``rhs(t, y, p, u=None) -> (N, k)``,
``jac(t, y, p, u=None) -> (N, k, k)`` and ``observe(t, y, p) -> {name: (N,)}``; state
columns are ``y[:, i]`` and each parameter is ``p[name]``, a float or a per-cell ``(N,)``
array. Common subexpressions are shared (``sympy.cse``). The source is plain text, so it can
be cached by the model file's hash and compiled again without sympy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.special
import sympy
from sympy.printing.numpy import SciPyPrinter

_HEADER = "import functools\n\nimport numpy\nimport scipy.special\n\n"
_GUARD = "    with numpy.errstate(divide='ignore', invalid='ignore', over='ignore'):\n        pass"


def _zero_derivatives(expr: Any) -> Any:
    """Derivatives sympy leaves unevaluated are of floor and ceiling: zero almost everywhere."""
    found = expr.atoms(sympy.Subs) | expr.atoms(sympy.Derivative)
    return expr.xreplace(dict.fromkeys(found, sympy.Integer(0))) if found else expr


def _body(
    lines: list[str],
    names: dict[Any, sympy.Symbol],
    exprs: Sequence[Any],
    printer: SciPyPrinter,
) -> list[str]:
    """Append the cse assignments; return the printed final expressions."""
    renamed = [sympy.sympify(e).xreplace(names) for e in exprs]
    subexprs, reduced = sympy.cse(renamed, symbols=sympy.numbered_symbols("_c"), order="none")
    for sym, sub in subexprs:
        lines.append(f"        {sym} = {printer.doprint(sub)}")
    return [printer.doprint(e) for e in reduced]


def _prologue(
    state: Sequence[sympy.Symbol], params: Mapping[str, sympy.Symbol], time: sympy.Symbol
) -> tuple[dict[Any, sympy.Symbol], list[str]]:
    names: dict[Any, sympy.Symbol] = {time: sympy.Symbol("t")}
    lines = []
    for i, s in enumerate(state):
        names[s] = sympy.Symbol(f"_y{i}")
        lines.append(f"    _y{i} = y[:, {i}]")
    for i, (name, s) in enumerate(params.items()):
        names[s] = sympy.Symbol(f"_p{i}")
        lines.append(f"    _p{i} = p[{name!r}]")
    return names, lines


def generate_module(
    state: Sequence[sympy.Symbol],
    params: Mapping[str, sympy.Symbol],
    time: sympy.Symbol,
    derivatives: Sequence[Any],
    observables: Mapping[str, Any],
) -> str:
    """The Python source of ``rhs``, ``jac`` and ``observe``.

    Args:
        state: The state symbols, in column order.
        params: Parameter name (the key of ``p``) to its symbol.
        time: The symbol of time.
        derivatives: ``d state[i] / dt`` as sympy expressions of the symbols above.
        observables: Name to expression for :func:`observe`.

    Returns:
        Module source; compile it with :func:`compile_module`.
    """
    printer = SciPyPrinter({"fully_qualified_modules": True, "allow_unknown_functions": False})
    k = len(state)
    names, prologue = _prologue(state, params, time)
    out = [_HEADER]

    out.append("def rhs(t, y, p, u=None):")
    out += prologue
    out.append("    out = numpy.empty(y.shape)")
    out.append(_GUARD)
    lines: list[str] = []
    printed = _body(lines, names, derivatives, printer)
    out += lines
    out += [f"        out[:, {i}] = {e}" for i, e in enumerate(printed)]
    out.append("    return out\n\n")

    entries = []
    for i, f in enumerate(derivatives):
        for j, s in enumerate(state):
            d = _zero_derivatives(sympy.diff(f, s))
            if d != 0:
                entries.append((i, j, d))
    out.append("def jac(t, y, p, u=None):")
    out += prologue
    out.append(f"    out = numpy.zeros((y.shape[0], {k}, {k}))")
    out.append(_GUARD)
    lines = []
    printed = _body(lines, names, [e for _, _, e in entries], printer)
    out += lines
    out += [
        f"        out[:, {i}, {j}] = {e}" for (i, j, _), e in zip(entries, printed, strict=True)
    ]
    out.append("    return out\n\n")

    out.append("def observe(t, y, p):")
    out += prologue
    out.append("    n = y.shape[0]")
    out.append("    res = {}")
    out.append(_GUARD)
    lines = []
    printed = _body(lines, names, list(observables.values()), printer)
    out += lines
    for name, e in zip(observables, printed, strict=True):
        out.append(
            f"        res[{name!r}] = numpy.broadcast_to(numpy.asarray({e}, dtype=float),"
            " (n,)).copy()"
        )
    out.append("    return res\n")
    return "\n".join(out)


def compile_module(source: str, name: str) -> dict[str, Callable[..., Any]]:
    """Compile generated source; returns its ``rhs``, ``jac`` and ``observe``."""
    namespace: dict[str, Any] = {"numpy": np, "scipy": scipy, "functools": functools}
    code = compile(source, f"<sbml model {name}>", "exec")
    exec(code, namespace)
    return {key: namespace[key] for key in ("rhs", "jac", "observe")}
