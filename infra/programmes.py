"""Programme files: YAML (or JSON, which is YAML) text read into the domain's validated programme."""

from __future__ import annotations

from typing import Any

import yaml

from domain.errors import ProgrammeInvalid
from domain.programme import Programme, parse_programme


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate mapping keys instead of silently keeping the last."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_programme(text: str) -> Programme:
    """Parse a programme from YAML or JSON text (JSON is YAML) and validate it."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ProgrammeInvalid([f"programme: not valid YAML or JSON: {exc}"]) from exc
    if not isinstance(data, dict):
        raise ProgrammeInvalid(["programme: expected a mapping at the top level"])
    return parse_programme(data)
