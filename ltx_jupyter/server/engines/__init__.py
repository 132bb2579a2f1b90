"""The engine registry: ``get_engine(name, **options)`` builds an engine by name.

``synthetic`` (the offline default) draws a preview animation; ``diffusers`` runs the real
LTX-Video through Hugging Face ``diffusers`` (the ``diffusers`` extra: torch is imported only
when that engine is built). Other engines register a factory with :func:`register_engine`;
factories are imported only when first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .base import Engine, EngineCancelled, EngineError, EngineOutput, EngineTask

__all__ = [
    "Engine",
    "EngineCancelled",
    "EngineError",
    "EngineOutput",
    "EngineTask",
    "available_engines",
    "get_engine",
    "register_engine",
]

# name -> "module:attribute" (imported lazily) or a factory.
_REGISTRY: dict[str, str | Callable[..., Engine]] = {
    "synthetic": "ltx_jupyter.server.engines.synthetic:SyntheticEngine",
    "diffusers": "ltx_jupyter.server.engines.ltx_diffusers:DiffusersEngine",
}


def register_engine(name: str, factory: str | Callable[..., Engine]) -> None:
    """Make ``factory`` (a callable, or ``"module:attribute"``) available as ``name``."""
    _REGISTRY[name] = factory


def available_engines() -> list[str]:
    """The registered engine names, sorted."""
    return sorted(_REGISTRY)


def get_engine(name: str, **options: Any) -> Engine:
    """Build the engine ``name`` with ``options`` (None values are left to its defaults).

    Raises ``ValueError`` naming the available engines when ``name`` is unknown.
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ValueError(
            f"unknown engine {name!r}; available engines: {', '.join(available_engines())}"
        )
    if isinstance(factory, str):
        module_name, _, attribute = factory.partition(":")
        factory = getattr(importlib.import_module(module_name), attribute)
    return factory(**{k: v for k, v in options.items() if v is not None})
