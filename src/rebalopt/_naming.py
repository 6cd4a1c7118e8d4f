"""Unique labels for lists of named objects (cost models, constraints)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["unique_names"]


def unique_names(items: Iterable[Any]) -> list[str]:
    """Each item's ``name``, made unique in order: ``name``, ``name#2``, ``name#3``...

    Plans, the simulated broker and diagnostics all key costs and constraints by
    these labels, so two instances of one class never collide.
    """
    out: list[str] = []
    for it in items:
        name, k = it.name, 2
        while name in out:
            name, k = f"{it.name}#{k}", k + 1
        out.append(name)
    return out
