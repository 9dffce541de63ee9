"""``llmcompiler.__all__`` is exactly the package's public surface (after httpx's tests/test_exported_members.py)."""

from __future__ import annotations

import types

import llmcompiler


def _public_names() -> set[str]:
    """Every attribute of the package that is neither private (``_x``, ``__x__``) nor a submodule."""
    return {
        name
        for name, value in vars(llmcompiler).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def test_all_has_no_duplicates() -> None:
    assert len(llmcompiler.__all__) == len(set(llmcompiler.__all__))


def test_every_name_in_all_exists() -> None:
    missing = [name for name in llmcompiler.__all__ if not hasattr(llmcompiler, name)]
    assert missing == []


def test_every_public_name_is_in_all() -> None:
    assert _public_names() == set(llmcompiler.__all__)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from llmcompiler import *", namespace)  # a fixed import statement, not model output
    namespace.pop("__builtins__")
    assert set(namespace) == set(llmcompiler.__all__)


def test_exported_classes_and_functions_say_they_come_from_llmcompiler() -> None:
    # Names defined in private modules are re-exported from the package; none may come from
    # a third-party module by accident.
    foreign = [
        name
        for name in llmcompiler.__all__
        if isinstance(value := getattr(llmcompiler, name), type | types.FunctionType)
        and not value.__module__.startswith("llmcompiler")
    ]
    assert foreign == []


def test_version_is_a_string() -> None:
    assert isinstance(llmcompiler.__version__, str) and llmcompiler.__version__
