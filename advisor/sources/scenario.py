"""A scenario file (YAML, or JSON, which is YAML too): read and parsed, then built by
:func:`advisor.model.scenario.build_scenario`.

Reading is strict where plain YAML is lax: a key that appears twice in one mapping is a
problem (plain YAML keeps the last one), times stay text (the model checks them as RFC
3339) and a number keeps how it was written (``longhorn_version: 1.10`` is not 1.1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from advisor.model.scenario import TOP_KEYS, Scenario, ScenarioError, build_scenario

__all__ = ["load_scenario", "read_scenario"]


class _Number(float):
    """A YAML float that remembers how it was written (``1.10`` is not ``1.1``)."""

    text: str


class _Loader(yaml.SafeLoader):
    """Safe YAML, with times kept as text and duplicate keys noted."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[str] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                if key.value in seen:
                    self.duplicates.append(
                        f"line {key.start_mark.line + 1}: key {key.value!r} appears twice "
                        "in one mapping")
                seen.add(key.value)
        return super().construct_mapping(node, deep)


def _float(loader: _Loader, node: yaml.ScalarNode) -> _Number:
    value = _Number(loader.construct_yaml_float(node))
    value.text = node.value
    return value


_Loader.add_constructor("tag:yaml.org,2002:float", _float)
_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _read(path_or_text: str | Path) -> tuple[str, str]:
    """(source name, text): a Path, or a str naming a .yaml/.yml/.json file, is read."""
    if isinstance(path_or_text, Path) or ("\n" not in path_or_text and path_or_text.strip()
                                          .lower().endswith((".yaml", ".yml", ".json"))):
        path = Path(path_or_text)
        try:
            return str(path), path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ScenarioError(str(path), ["not a YAML file: not UTF-8 text"]) from None
    return "<text>", path_or_text


def _parse(source: str, text: str) -> dict[str, Any]:
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ScenarioError(source, [f"not YAML: {problem}{where}"]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}"
        raise ScenarioError(source, [f"not a scenario: the file is {what}, expected a mapping "
                                     f"with keys {', '.join(TOP_KEYS)}"])
    if loader.duplicates:
        raise ScenarioError(source, loader.duplicates)
    return data


def read_scenario(path_or_text: str | Path) -> tuple[str, dict[str, Any]]:
    """``(source, mapping)``: a scenario file parsed, and its name for errors (``<text>``
    for YAML text). ``path_or_text`` is a :class:`~pathlib.Path`, a path ending in
    ``.yaml``, ``.yml`` or ``.json``, or the YAML text itself.

    Raises :class:`~advisor.model.scenario.ScenarioError` when the file is not UTF-8,
    not YAML, not a mapping or has a key twice; ``OSError`` when it cannot be read.
    """
    source, text = _read(path_or_text)
    return source, _parse(source, text)


def load_scenario(path_or_text: str | Path) -> Scenario:
    """Read and check a scenario (see :func:`read_scenario` for ``path_or_text``).

    Raises :class:`~advisor.model.scenario.ScenarioError` listing every problem found,
    ``FileNotFoundError`` (an ``OSError``) when the file cannot be read.
    """
    source, data = read_scenario(path_or_text)
    return build_scenario(data, source)
