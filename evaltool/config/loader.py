"""Load a YAML config: safe parsing with line numbers, then pydantic validation.

Every problem is collected before stopping and reported with its key path and
YAML position, e.g.::

    analyses[0].comparison (federation.yaml:14:17): got 'never'; expected one of 'never_joined', 'not_yet_joined'
"""

from __future__ import annotations

import difflib
import functools
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, create_model

from evaltool.config.models import Year
from evaltool.config.root import Config, Loc, describe_key
from evaltool.config.root import source_name as _name
from evaltool.errors import ConfigError
from evaltool.estimators.registry import all_methods

__all__ = ["Config", "config_model", "load_config", "parse_config"]

#: Bounds on a config file, checked before and while parsing so a hostile file cannot exhaust memory or the
#: stack (a "billion laughs" of nested aliases, thousands of nested lists).  Real configs are a few KB deep 6.
MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 40
MAX_NODES = 50_000


@functools.cache
def config_model() -> type[Config]:
    """The root config model, with one analysis model per registered method."""
    option_models = tuple(m.options for m in all_methods())
    if len(option_models) == 1:
        analysis_type: Any = option_models[0]
    else:
        analysis_type = Annotated[Union[option_models], Field(discriminator="method")]  # noqa: UP007
    return create_model(
        "Config",
        __base__=Config,
        analyses=(list[analysis_type], Field(min_length=1, description="Analyses to run, in order.")),
    )


def load_config(path: str | Path) -> Config:
    """Read, parse and validate a YAML config file.

    Raises
    ------
    ConfigError
        With every problem found, each naming its key and YAML line.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"Config file '{path}' is {size:,} bytes; a config is at most {MAX_CONFIG_BYTES:,} bytes. Check that "
            "this is the config (not a data file); data belong in files named under data:."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Config file '{path}' does not exist. Check the path (it is relative to {Path.cwd()}).") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file '{path}' cannot be read: {exc}.") from None
    return parse_config(text, source=path)


def parse_config(text: str, source: Path | None = None) -> Config:
    """Parse and validate config text (``source`` is used in messages and to resolve paths)."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{_name(source)}: the config text is longer than {MAX_CONFIG_BYTES:,} characters.")
    data, positions = _parse_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(f"{_name(source)}: the config must be a mapping of keys (title, data, columns, analyses …).")
    model = config_model()
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        problems = [_describe_error(err, data, model, source, positions) for err in exc.errors()]
        raise ConfigError(_problem_list(source, problems)) from None
    config._source = source.resolve() if source is not None else None
    config._positions = positions
    problems = _cross_check(config)
    if problems:
        raise ConfigError(_problem_list(source, problems))
    return config


def config_from_dict(
    data: dict[str, Any], *, namer: typing.Callable[[Loc], str], base_dir: Path | None = None
) -> Config:
    """Validate a config built in code (the Python API) with the same checks as a YAML file.

    Parameters
    ----------
    data
        The config as plain Python values (the YAML's mapping).
    namer
        Names a key path in messages (``('columns', 'school')`` → ``"unit"``): the API's argument names.
    base_dir
        Folder relative paths are resolved against (default: the working directory).

    Raises
    ------
    ConfigError
        With every problem found, each naming its argument.
    """
    model = config_model()
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        problems = [_describe_error(err, data, model, None, {}, namer=namer) for err in exc.errors()]
        raise ConfigError(_problem_list(None, problems, head="The arguments have")) from None
    config._source = (base_dir / "<api>").resolve() if base_dir is not None else None
    config._namer = namer
    problems = _cross_check(config)
    if problems:
        raise ConfigError(_problem_list(None, problems, head="The arguments have"))
    return config


def _cross_check(config: Config) -> list[str]:
    """Checks that span several keys (unique names, outcomes that are mapped)."""
    problems = []
    seen: dict[str, int] = {}
    for i, analysis in enumerate(config.analyses):
        if analysis.name in seen:
            problems.append(
                f"{config.where(('analyses', i, 'name'))}: analysis name '{analysis.name}' is already used by "
                f"analyses[{seen[analysis.name]}]; give each analysis a unique name."
            )
        seen.setdefault(analysis.name, i)
        if analysis.outcome is not None and analysis.outcome not in config.columns.outcomes:
            problems.append(
                f"{config.where(('analyses', i, 'outcome'))}: outcome '{analysis.outcome}' is not listed in "
                f"columns.outcomes {config.columns.outcomes}{_did_you_mean(analysis.outcome, config.columns.outcomes)}; "
                "add it to columns.outcomes or correct the name."
            )
        placebo = analysis.sensitivity.placebo_outcome
        if placebo is not None and placebo not in config.columns.outcomes:
            problems.append(
                f"{config.where(('analyses', i, 'sensitivity', 'placebo_outcome'))}: placebo outcome '{placebo}' is not "
                f"listed in columns.outcomes {config.columns.outcomes}{_did_you_mean(placebo, config.columns.outcomes)}; "
                "add it to columns.outcomes (it is checked and loaded like the others)."
            )
        if placebo is not None and placebo == config.analysis_outcomes(analysis):
            problems.append(
                f"{config.where(('analyses', i, 'sensitivity', 'placebo_outcome'))}: the placebo outcome must differ "
                f"from the analysis's outcome '{placebo}'; name an outcome joining cannot have changed."
            )
        check = getattr(analysis, "cross_check", None)
        if check is not None:
            for sub_loc, message in check(config):
                problems.append(f"{config.where(('analyses', i, *sub_loc))}: {message}")
    return problems + _years_outside_range(config)


def _years_outside_range(config: Config) -> list[str]:
    """Years written in the config (exclude_years, pre/post years …) must lie in ``data.year_range``."""
    first, last = config.data.year_range
    found = [(("data", "exclude_years", j), year) for j, year in enumerate(config.data.exclude_years)]
    for i, analysis in enumerate(config.analyses):
        for name, field in type(analysis).model_fields.items():
            if _holds_years(field.annotation):
                value = getattr(analysis, name)
                years = value if isinstance(value, (list, tuple)) else [value]
                found += [(("analyses", i, name, j), year) for j, year in enumerate(years) if year is not None]
    return [
        f"{config.where(loc)}: the year {year} is outside data.year_range [{first}, {last}]; correct the year "
        "(academic years such as 2019 for 2018/19), or widen data.year_range if the data really cover it."
        for loc, year in found
        if not first <= year <= last
    ]


def _holds_years(annotation: Any) -> bool:
    """Whether a field is a :data:`~evaltool.config.models.Year` or a list/tuple of them."""
    return annotation is Year or any(_holds_years(arg) for arg in typing.get_args(annotation))


# --------------------------------------------------------------------- YAML
class _Loader(yaml.SafeLoader):
    """SafeLoader: builds only plain Python types; never executes anything."""


_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _parse_yaml(text: str, source: Path | None) -> tuple[Any, dict[Loc, tuple[int, int]]]:
    """Compose the YAML node tree (aliases stay shared references) and build plain values from it, bounded."""
    loader: _Loader | None = None
    try:
        _check_depth(text, source)
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(f"{_name(source)} is empty; see docs/configuration.md for an example config.")
        builder = _Builder(loader, source)
        data = builder.build(node, ())
    except RecursionError:
        raise ConfigError(
            f"{_name(source)}: the config is nested too deeply (more than {MAX_DEPTH} levels); a config needs about 6."
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{_name(source)}:{mark.line + 1}:{mark.column + 1}" if mark else _name(source)
        problem = getattr(exc, "problem", None) or str(exc).replace("\n", " ")
        raise ConfigError(f"{where}: not valid YAML ({problem}). Check indentation and quoting around that line.") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, builder.positions


def _check_depth(text: str, source: Path | None) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` from the token stream, before any node is built.

    (The composer is recursive: 5,000 nested ``[`` would otherwise end in a RecursionError.)
    """
    depth = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken, yaml.BlockMappingStartToken,
                                  yaml.BlockSequenceStartToken)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = token.start_mark
                    raise ConfigError(
                        f"{_name(source)}:{mark.line + 1}:{mark.column + 1}: the config is nested more than "
                        f"{MAX_DEPTH} levels deep; a config needs about 6. Check the brackets and indentation."
                    )
            elif isinstance(token, (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)):
                depth -= 1
    except yaml.YAMLError:
        return  # the parser reports it with its position


class _Builder:
    """Plain values from a composed YAML node tree, with the position of every key.

    Every value built counts towards :data:`MAX_NODES`, including each time an alias (``*name``) or a merge
    key (``<<: *name``) repeats an anchored block, so a "billion laughs" file stops after
    :data:`MAX_NODES` values instead of expanding into gigabytes.  Merge keys follow the YAML merge rules:
    keys written in the mapping itself win over merged ones, and earlier merged mappings over later ones.
    """

    def __init__(self, loader: _Loader, source: Path | None) -> None:
        self.loader = loader
        self.source = source
        self.positions: dict[Loc, tuple[int, int]] = {}
        self.count = 0
        self._merging: set[int] = set()

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.count += 1
        if self.count > MAX_NODES or len(loc) > MAX_DEPTH:
            raise ConfigError(
                f"{describe_key(loc[:1], self.source, self.positions)}: the config expands to more than "
                f"{MAX_NODES:,} values (or {MAX_DEPTH} levels), e.g. through repeated YAML aliases (*name); "
                "write the values out instead."
            )
        self.positions.setdefault(loc, _position(node))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
            raise yaml.constructor.ConstructorError(
                None, None, f"the tag {node.tag!r} is not allowed (configs hold plain values only)", node.start_mark
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits, a date such as 2019-13-40
            raise ConfigError(
                f"{describe_key(loc, self.source, {loc: _position(node)})}: the value cannot be read ({exc}). "
                "Write a plain number, or put text in quotes."
            ) from None

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for merged in self._merge_sources(node):
            for key, value in self._merged(merged, loc).items():
                result.setdefault(key, value)
        own: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self._key(key_node)
            key_loc = (*loc, key)
            if key in own:
                raise ConfigError(
                    f"{describe_key(key_loc, self.source, {key_loc: _position(key_node)})}: key '{key}' appears twice "
                    "in the same block; keep one."
                )
            own.add(key)
            self.positions[key_loc] = _position(key_node)
            result[key] = self.build(value_node, key_loc)
            self.positions[key_loc] = _position(key_node)
        return result

    def _merged(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        if id(node) in self._merging:
            raise ConfigError(
                f"{describe_key(loc, self.source, {loc: _position(node)})}: a YAML merge key (<<) includes the block "
                "it is part of; remove that merge."
            )
        self._merging.add(id(node))
        try:
            return self._mapping(node, loc)
        finally:
            self._merging.discard(id(node))

    def _key(self, key_node: yaml.Node) -> Any:
        if isinstance(key_node, yaml.ScalarNode):
            key = self.loader.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)):
                return key
        raise ConfigError(f"{_name(self.source)}:{key_node.start_mark.line + 1}: keys must be plain words.")

    def _merge_sources(self, node: yaml.MappingNode) -> list[yaml.MappingNode]:
        """The mappings named by the merge keys (``<<``) of ``node``, in order."""
        sources: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                continue
            items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for item in items:
                if not isinstance(item, yaml.MappingNode):
                    raise yaml.constructor.ConstructorError(
                        None, None, "a merge key (<<) takes a mapping or a list of mappings", item.start_mark
                    )
                sources.append(item)
        return sources


def _position(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


# ------------------------------------------------------------ error messages
def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(str(value))} characters)"


def _problem_list(source: Path | None, problems: list[str], head: str | None = None) -> str:
    head = head or f"The config {_name(source)} has"
    head = f"{head} {len(problems)} problem{'s' if len(problems) != 1 else ''}:"
    return "\n".join([head, *(f"  - {p}" for p in problems)])


def _did_you_mean(word: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe_error(
    err: dict, data: Any, model: type[BaseModel], source: Path | None, positions: dict,
    namer: typing.Callable[[Loc], str] | None = None,
) -> str:
    loc, fields_here = _clean_loc(tuple(err["loc"]), data, model)

    def where(at: Loc) -> str:  # the argument's name (Python API) or the key with its YAML position
        return namer(tuple(at)) if namer is not None else describe_key(at, source, positions)

    kind = err["type"]
    got = err.get("input")
    if kind == "extra_forbidden":
        key = loc[-1]
        hint = _did_you_mean(str(key), fields_here or [])
        allowed = f" Allowed keys here: {', '.join(sorted(fields_here))}." if fields_here else ""
        return f"{where(loc)}: unknown key '{key}'{hint}.{allowed}"
    if kind == "literal_error" and loc[-1:] == ("method",) and loc[:1] == ("analyses",):
        kind, err = "union_tag_invalid", {**err, "ctx": {"tag": got}}
    if kind == "missing" and loc and isinstance(loc[-1], int):  # a fixed-length list such as [first, last]
        return f"{where(loc[:-1])}: value {loc[-1] + 1} of the list is missing."
    if kind == "missing":
        return f"{where(loc)}: required key is missing."
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        methods = [m.name for m in all_methods()]
        if kind == "union_tag_not_found":
            return f"{where(loc)}: each analysis needs a 'method' key; one of {', '.join(methods)}."
        tag = err.get("ctx", {}).get("tag")
        return (
            f"{where((*loc, 'method'))}: unknown method '{tag}'"
            f"{_did_you_mean(str(tag), methods)}; available methods: {', '.join(methods)}."
        )
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    shown = "" if isinstance(got, (dict, list)) else f"; got {_short(got)}"
    return f"{where(loc)}: {message}{shown}."


def _clean_loc(loc: Loc, data: Any, model: type[BaseModel]) -> tuple[Loc, list[str] | None]:
    """Drop pydantic's union-tag parts from ``loc``; return the field names at the parent.

    Pydantic puts the discriminator value (e.g. ``'did_2x2'``) into the
    location of errors inside a tagged union, and the class name into errors
    of plain unions; neither is a key the user wrote.
    """
    clean: list[str | int] = []
    node: Any = data
    annotation: Any = model
    parent_fields: list[str] | None = None
    for part in loc:
        annotation = _unwrap(annotation, node)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            parent_fields = list(annotation.model_fields)
            if isinstance(part, str) and part in annotation.model_fields:
                clean.append(part)
                annotation = annotation.model_fields[part].annotation
                node = node.get(part) if isinstance(node, dict) else None
                continue
            if isinstance(node, dict) and part in node:  # an unknown key
                clean.append(part)
                node = node.get(part)
                annotation = None
                continue
            continue  # a union tag or class name: not a user key
        if isinstance(part, int) and isinstance(node, list):
            clean.append(part)
            node = node[part] if part < len(node) else None
            args = typing.get_args(annotation)
            annotation = args[0] if args else None
            continue
        if isinstance(node, dict) and part in node:
            clean.append(part)
            node = node[part]
            args = typing.get_args(annotation)
            annotation = args[-1] if args else None
            continue
        # pydantic type-name parts such as 'str', 'function-after[...]' or a tag
    return tuple(clean), parent_fields


def _unwrap(annotation: Any, node: Any) -> Any:
    """Resolve Optional / Annotated / tagged unions to the model matching ``node``."""
    for _ in range(6):
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (Union, types.UnionType):
            models = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
            if not models:
                non_none = [a for a in typing.get_args(annotation) if a is not type(None)]
                annotation = non_none[0] if non_none else None
                continue
            if isinstance(node, dict) and "method" in node:
                for m in models:
                    field = m.model_fields.get("method")
                    if field is not None and node["method"] in typing.get_args(field.annotation):
                        return m
            return models[0]
        return annotation
    return annotation
