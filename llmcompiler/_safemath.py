"""Arithmetic on untrusted text without ``eval``: parse, then walk a whitelist of node types."""

from __future__ import annotations

import ast
import math as _math
import operator
import re
from collections.abc import Callable
from typing import Any

__all__ = ["evaluate"]

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "round": round,
    "abs": abs,
    "min": min,
    "max": max,
    "sqrt": _math.sqrt,
}
_CONSTANTS = {"pi": _math.pi, "e": _math.e}
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
MAX_EXPONENT = 1000
MAX_LENGTH = 2000


def evaluate(expression: str) -> float:
    """The value of an arithmetic expression.

    Numbers may carry thousands separators (``8,849``). Anything but numbers, operators,
    parentheses and the functions round, abs, min, max and sqrt is refused.

    Raises:
        ValueError: naming the part that is not arithmetic.
    """
    text = _THOUSANDS.sub("", expression.strip())
    if len(text) > MAX_LENGTH:
        raise ValueError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {expression!r} ({exc.msg})") from None
    value = _walk(tree.body)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"not a number: {expression!r}")
    return float(value)


def _walk(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _walk(node.left), _walk(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponent {right} is too large")
        try:
            return _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ValueError("division by zero") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_walk(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _FUNCTIONS[node.func.id](*(_walk(a) for a in node.args))
    raise ValueError(f"not allowed in arithmetic: {ast.unparse(node)!r}")
