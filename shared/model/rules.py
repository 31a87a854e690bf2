"""Per-layer-type rules: one ``functools.singledispatch`` function per place that must know every layer type.

Each place (shapes, parameters, FLOPs, initial weights, the backends' builders and weight maps) declares its rule
with ``layer_rule("<place>")`` and registers one implementation per layer type beside the code that knows that
type. A type with no rule in a place is refused with a ``TypeError`` naming the type and the place, so a new layer
type fails loudly until it has every rule (``shared/tests/model/test_layer_rules.py`` checks each registered
place against every type of ``shared.model.specs.Layer``).
"""

from __future__ import annotations

import functools
from typing import Any
from collections.abc import Callable

# place -> (its dispatching function, whether only elementary layers reach it), for the test that checks every
# type everywhere. A backend's places appear once its module is imported.
PLACES: dict[str, tuple[Any, bool]] = {}


def layer_rule(place: str, leaves_only: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """Make ``function`` (its first argument a layer) a per-type rule for ``place``; types register with
    ``@function.register``. The undecorated body is never a rule: it only documents the signature.
    ``leaves_only``: the place is reached only through ``named_leaves``, so composites need no rule there."""

    def decorate(function: Callable[..., Any]) -> Any:
        @functools.singledispatch
        @functools.wraps(function)
        def dispatch(layer, *args, **kwargs):
            raise TypeError(f"no {place} rule for layer type {type(layer).__name__}: register one with "
                            f"@{function.__module__}.{function.__name__}.register")

        PLACES[place] = (dispatch, leaves_only)
        return dispatch

    return decorate
