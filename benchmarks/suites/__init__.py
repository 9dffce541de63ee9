"""The benchmark suites: ``bfcl``, ``parallelqa``, ``dag`` and ``nestful``. Each gives a list of ``Item``s."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.suites._common import Item, LatencyModel

__all__ = ["SUITES", "Item", "LatencyModel", "load_suite"]

SUITES = ("bfcl", "parallelqa", "dag", "nestful")


def load_suite(name: str, *, seed: int = 0) -> list[Item]:
    """The items of suite ``name``, in their benchmark order (``--limit N`` takes the first N).

    Raises:
        ValueError: an unknown suite.
        FileNotFoundError: the BFCL data was never fetched.
    """
    loaders: dict[str, Callable[[], list[Item]]] = {}
    if name == "bfcl":
        from benchmarks.suites import bfcl

        loaders[name] = lambda: bfcl.load_items(seed=seed)
    elif name == "parallelqa":
        from benchmarks.suites import parallelqa

        loaders[name] = lambda: parallelqa.load_items(seed=seed)
    elif name == "dag":
        from benchmarks.suites import dag

        loaders[name] = lambda: dag.load_items(seed=seed)
    elif name == "nestful":
        from benchmarks.suites import nestful

        loaders[name] = lambda: nestful.load_items(seed=seed)
    else:
        raise ValueError(f"unknown suite {name!r}: choose from {', '.join(SUITES)}")
    return loaders[name]()
