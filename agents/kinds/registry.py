"""Kind name -> executor. Each kind module registers itself here on import."""

from __future__ import annotations

import importlib

from agents.kinds.base import KINDS, Executor


def executor_for(kind: str) -> Executor:
    if kind not in KINDS:
        raise ValueError(f"kind: one of {', '.join(KINDS)}; got {kind!r}")
    module = importlib.import_module(f"agents.kinds.{kind}")
    return module.EXECUTOR


def validate_config(kind: str, config: dict, *, input_fields, output_fields) -> dict:
    """The kind's own checks of its configuration section (compile CEL, parse templates...).

    Returns the normalised config or raises `agents.kinds.base`-independent ConfigError
    (`agents.kinds.config.ConfigError`) naming the path of the problem."""
    if kind not in KINDS:
        raise ValueError(f"kind: one of {', '.join(KINDS)}; got {kind!r}")
    module = importlib.import_module(f"agents.kinds.{kind}")
    return module.validate_config(config, input_fields=input_fields, output_fields=output_fields)
