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


def _engine_class(name: str) -> Any:
    """The engine class named `name`; ValueError if none has that name."""
    for ep in entry_points(group="herbdesk.engines"):
        if ep.name == name:
            return ep.load()
    spec = _BUILTIN.get(name)
    if spec is None:
        raise ValueError(f"unknown engine {name!r}; available: {', '.join(available_engines())}")
    import importlib

    mod_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(mod_name), attr)


def create_engine(settings: EngineSettings) -> Engine:
    """Instantiate the engine named in settings; ValueError if none has that name."""
    engine: Engine = _engine_class(settings.engine)(settings)
    return engine


def reports_cost(name: str) -> bool:
    """Whether the engine named `name` reports what a specimen cost: an engine class says
    it does not with `reports_cost = False` (the offline OCR engine). Unknown: True."""
    try:
        return bool(getattr(_engine_class(name), "reports_cost", True))
    except (ImportError, ValueError):
        return True


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
    "reports_cost",
]
