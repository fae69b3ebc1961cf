"""Pluggable engines, found through the `herbdesk.engines` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from herbdesk.extraction.engines.base import (
    Check,
    Engine,
    EngineError,
    EngineSettings,
    ErrorKind,
    Extraction,
    FieldValue,
    SpecimenInput,
)

# Built-ins are listed here too so a frozen app or an uninstalled tree finds them.
_BUILTIN = {
    "ocr": "herbdesk.extraction.engines.ocr:OcrEngine",
    "openrouter": "herbdesk.extraction.engines.openrouter:OpenRouterEngine",
}


def available_engines() -> list[str]:
    names = set(_BUILTIN)
    names.update(ep.name for ep in entry_points(group="herbdesk.engines"))
    return sorted(names)


def create_engine(settings: EngineSettings) -> Engine:
    """Instantiate the engine named in settings; ValueError if none has that name."""
    target: Any = None
    for ep in entry_points(group="herbdesk.engines"):
        if ep.name == settings.engine:
            target = ep.load()
            break
    if target is None:
        spec = _BUILTIN.get(settings.engine)
        if spec is None:
            raise ValueError(
                f"unknown engine {settings.engine!r}; available: {', '.join(available_engines())}"
            )
        import importlib

        mod_name, _, attr = spec.partition(":")
        target = getattr(importlib.import_module(mod_name), attr)
    engine: Engine = target(settings)
    return engine


__all__ = [
    "Check",
    "Engine",
    "EngineError",
    "EngineSettings",
    "ErrorKind",
    "Extraction",
    "FieldValue",
    "SpecimenInput",
    "available_engines",
    "create_engine",
]
