"""Arithmetic on untrusted text without ``eval``: parse, then walk a whitelist of node types.

Every step's size is bounded before it is computed: integer results are estimated from their
operands' bit lengths (a product has at most the sum of its factors' bits, a power about the
base's bits times the exponent) and refused past ``MAX_INT_BITS``, so ``10**10**10``,
``((10**1000)**1000)**10`` or ``round(1, -30000000)`` fail in microseconds instead of holding
the interpreter for minutes. Floats cannot grow: their overflow is an error too. The walk uses
its own stack, so a long sum is no deeper in Python than a short one.
"""

from __future__ import annotations

import ast
import math as _math
import operator
import re
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_INT_BITS", "evaluate"]

Number = int | float

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
_CONSTANTS = {"pi": _math.pi, "e": _math.e}
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
MAX_LENGTH = 2000
MAX_INT_BITS = 10_000
"""The largest integer any step may produce, in bits (about 3,000 decimal digits)."""
_LIMIT_DIGITS = 3_000


def evaluate(expression: str) -> float:
    """The value of an arithmetic expression.

    Numbers may carry thousands separators (``8,849``). Anything but numbers, operators,
    parentheses and the functions round, abs, min, max and sqrt is refused.

    Raises:
        ValueError: naming the part that is not arithmetic, or the step whose result would be
            too large.
    """
    text = _THOUSANDS.sub("", expression.strip())
    if len(text) > MAX_LENGTH:
        raise ValueError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {expression!r} ({exc.msg})") from None
    except (RecursionError, MemoryError):
        raise ValueError("expression nested too deeply") from None
    value = _walk(tree.body)
    if isinstance(value, int):
        try:
            value = float(value)
        except OverflowError:
            raise ValueError("the result is too large for a floating-point number") from None
    if not _math.isfinite(value):
        raise ValueError("the result is too large for a floating-point number")
    return value


def _walk(root: ast.AST) -> Number:
    """Evaluate ``root`` bottom-up with an explicit stack (no recursion)."""
    values: list[Number] = []
    stack: list[tuple[ast.AST, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if ready:
            _apply(node, values)
            continue
        children = _operands(node)
        if not children:
            values.append(_leaf(node))
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(children))
    return values[-1]


def _operands(node: ast.AST) -> list[ast.expr]:
    """The sub-expressions to evaluate before ``node``; refuses every node type not allowed."""
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return [node.operand]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if node.keywords or not node.args:
            raise ValueError(f"{node.func.id}() takes numbers only: {_show(node)}")
        return list(node.args)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return []
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return []
    raise ValueError(f"not allowed in arithmetic: {_show(node)}")


def _leaf(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant):
        value = node.value
        assert isinstance(value, (int, float))  # _operands let only numbers through
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise ValueError(f"the number {_show(node)} is too large")
        return value
    assert isinstance(node, ast.Name)
    return _CONSTANTS[node.id]


def _apply(node: ast.AST, values: list[Number]) -> None:
    """Pop ``node``'s operands from ``values`` and push its value."""
    try:
        if isinstance(node, ast.BinOp):
            right, left = values.pop(), values.pop()
            values.append(_checked(_binary(type(node.op), left, right)))
        elif isinstance(node, ast.UnaryOp):
            values.append(_UNARY[type(node.op)](values.pop()))
        else:
            assert isinstance(node, ast.Call)
            assert isinstance(node.func, ast.Name)
            args = values[len(values) - len(node.args) :]
            del values[len(values) - len(node.args) :]
            values.append(_checked(_FUNCTIONS[node.func.id](*args)))
    except ZeroDivisionError:
        raise ValueError(f"division by zero in {_show(node)}") from None
    except _TooLarge as exc:
        size = f"about {_digits(exc.bits):,} digits (a step may make at most about {_LIMIT_DIGITS:,})"
        raise ValueError(f"{_show(node)} is too large: {size}") from None
    except OverflowError:
        raise ValueError(f"{_show(node)} is too large for a floating-point number") from None
    except TypeError as exc:
        raise ValueError(f"{_show(node)}: {exc}") from None


def _binary(op: type[ast.operator], left: Number, right: Number) -> Number:
    """``left op right``, refused before it is computed when the result would be too large."""
    if isinstance(left, int) and isinstance(right, int):
        if op is ast.Mult and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise _TooLarge(left.bit_length() + right.bit_length() - 1)
        # (bits - 1) * exponent is a lower bound of the power's size; the real size is at most
        # twice it, so what passes this check stays small, and what fails it is surely too large.
        if op is ast.Pow and right > 0 and abs(left) > 1 and (left.bit_length() - 1) * right > MAX_INT_BITS:
            raise _TooLarge(_power_bits(left, right))
    if op is ast.Pow and left < 0 and isinstance(right, float) and not right.is_integer():
        raise ValueError(f"a negative number to a fractional power (({left}) ** {right}) is not a real number")
    result: Number = _BINARY[op](left, right)
    return result


class _TooLarge(Exception):
    """A step would make an integer of ``bits`` bits, more than allowed."""

    def __init__(self, bits: int) -> None:
        super().__init__(bits)
        self.bits = bits


def _power_bits(base: int, exponent: int) -> int:
    """About how many bits ``base ** exponent`` has, computed without it."""
    try:
        return int(_math.log2(abs(base)) * exponent) + 1
    except OverflowError:  # an exponent beyond float range: the lower bound is plenty for a message
        return (base.bit_length() - 1) * exponent


def _digits(bits: int) -> int:
    """About how many decimal digits an integer of ``bits`` bits has."""
    return bits * 3_010_299_957 // 10**10 + 1  # log10(2) to ten digits, in integers: no float overflow


def _checked(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _TooLarge(value.bit_length())
    if isinstance(value, float) and not _math.isfinite(value):
        raise OverflowError  # reported as too large for a float
    return value


def _round(value: Number, ndigits: Number | None = None) -> Number:
    """``round``, with the digit count bounded: ``round(1, -30000000)`` would compute ``10**30000000``."""
    if ndigits is None:
        return round(value)
    if not isinstance(ndigits, int):
        raise TypeError("round()'s digit count must be a whole number")
    # More digits than any number here has (a float has at most 309 before the point and 324 after
    # it): rounding to them changes nothing, or gives 0, and round() would compute 10**ndigits.
    limit = _digits(MAX_INT_BITS) + 1
    if ndigits >= limit:
        return value
    if ndigits <= -limit:
        return 0 if isinstance(value, int) else 0.0
    return round(value, ndigits)


def _sqrt(value: Number) -> float:
    if value < 0:
        raise ValueError(f"sqrt of a negative number ({value})")
    return _math.sqrt(value)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "round": _round,
    "abs": abs,
    "min": min,
    "max": max,
    "sqrt": _sqrt,
}


def _show(node: ast.AST) -> str:
    """A sub-expression as written, quoted and cut, for an error message."""
    try:
        text = ast.unparse(node)
    except (RecursionError, ValueError):
        return "a nested expression"
    return repr(text if len(text) <= 80 else text[:79] + "…")
