"""JSON Schema of the config, and the list of every documented key path."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

from evaltool.config.loader import _unwrap, config_model
from evaltool.config.models import AnalysisBase
from evaltool.estimators.registry import all_methods


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a config file."""
    schema = config_model().model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "evaltool config"
    return schema


def _model_keys(model: type[BaseModel], prefix: str) -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        keys.append(path)
        annotation = _unwrap(field.annotation, None)
        origin = typing.get_origin(annotation)
        if origin in (list, dict):
            annotation = _unwrap(typing.get_args(annotation)[-1], None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and not issubclass(annotation, AnalysisBase):
            keys.extend(_model_keys(annotation, path))
    return keys


def documented_keys() -> dict[str, list[str]]:
    """Every key a config can have, grouped: ``'config'`` and one entry per method.

    Keys every analysis has are written ``analyses[].<key>``; method keys
    ``<method>.<key>`` (e.g. ``did_2x2.pre_years``).
    """
    groups = {"config": [k for k in _model_keys(config_model(), "") if not k.startswith("analyses.")]}
    groups["analyses[]"] = _model_keys(AnalysisBase, "analyses[]")
    for method in all_methods():
        own = [k for k in method.options.model_fields if k not in AnalysisBase.model_fields]
        groups[method.name] = [
            key for key in _model_keys(method.options, method.name) if key.split(".")[1] in own
        ]
    return groups
