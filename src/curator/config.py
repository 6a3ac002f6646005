"""Load ``params.yaml``, apply dotted overrides (``a.b=c``) and validate sections into typed dataclasses.

Every stage reads its section through :func:`load_section`, so a misspelt, missing or out-of-range key fails
before any work with a message naming the key and, where it helps, the valid choices.
"""

from __future__ import annotations

import atexit
import contextvars
import dataclasses
import difflib
import importlib
import json
import os
import sys
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

DEFAULT_PARAMS = "params.yaml"

T = TypeVar("T")

# section name -> module that defines it (imported lazily so a stage only imports what it needs)
SECTION_MODULES: dict[str, str] = {
    "data": "curator.contract.data",
    "curation": "curator.contract.data",
    "dataset": "curator.datasets.params",
    "simulation": "curator.datasets.params",
    "source_simulate": "curator.datasets.params",
    "score": "curator.scoring.params",
    "source_score": "curator.scoring.sources.params",
    "probe": "curator.scoring.probe.params",
    "select": "curator.selection.params",
    "source_select": "curator.selection.sources.params",
    "train": "curator.training.params",
    "eval": "curator.evaluation.params",
    "enhance": "curator.evaluation.params",
    "compare": "curator.evaluation.efficacy.params",
}
SECTION_PLUGINS: dict[str, str] = {
    "score": "curator.scoring.plugins",
    "source_score": "curator.scoring.sources.plugins",
    "select": "curator.selection.plugins",
    "train": "curator.training.plugins",
    "eval": "curator.evaluation.plugins",
    "compare": "curator.evaluation.efficacy.plugins",
}
"""Section -> module whose ``validate(params)`` checks plug-in names and options against the registries. The
dataclasses never import a registry (whose plug-ins import the dataclasses): no import circles."""
_SECTIONS: dict[str, type] = {}


TRACE_ENV = "CURATOR_PARAMS_TRACE"
"""When set to a folder, every process writes there the dotted params keys its code read (a test compares them
with each stage's ``params:`` in dvc.yaml, so DVC reruns exactly the stages a change affects)."""
_READ_KEYS: set[str] = set()
_TRACED: dict[type, type] = {}
_TRACE_REGISTERED: list[bool] = []


class ConfigError(ValueError):
    """A parameter is missing, unknown, mistyped or out of range."""


def _traced_class(cls: type) -> type:
    """A subclass of dataclass ``cls`` that records every field read as ``<where>.<field>``."""
    if cls not in _TRACED:
        def __getattribute__(self: Any, name: str) -> Any:
            value = object.__getattribute__(self, name)
            if name in cls.__dataclass_fields__ and not dataclasses.is_dataclass(value):  # type: ignore[attr-defined]
                where = self.__dict__.get("_params_where")
                if where is not None:
                    _READ_KEYS.add(f"{where}.{name}")
            return value

        def __reduce_ex__(self: Any, protocol: Any) -> tuple:
            return _untraced, (cls, {k: v for k, v in self.__dict__.items() if k != "_params_where"})

        _TRACED[cls] = type(cls.__name__, (cls,), {"__getattribute__": __getattribute__,
                                                   "__reduce_ex__": __reduce_ex__, "__module__": cls.__module__})
    return _TRACED[cls]


def read_entry(obj: Any, field_name: str, key: str) -> Any:
    """``getattr(obj, field_name)[key]`` of a dict-valued param, recorded as reading that one entry only.

    A stage that reads one entry of a mapping (one variant of ``compare.variants``) lists just that entry in
    dvc.yaml, so editing another entry does not rerun it; plain attribute access would record the whole mapping.
    """
    mapping = object.__getattribute__(obj, field_name)
    where = obj.__dict__.get("_params_where")
    if where is not None:
        _READ_KEYS.add(f"{where}.{field_name}.{key}")
    return mapping[key]


def _untraced(cls: type, state: dict[str, Any]) -> Any:
    """Unpickle a traced params object as its plain dataclass (worker processes do not trace)."""
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


def _trace(obj: T, where: str) -> T:
    """Record the params read from ``obj`` when :data:`TRACE_ENV` is set (a no-op otherwise)."""
    if not os.environ.get(TRACE_ENV) or not dataclasses.is_dataclass(obj) or where.split(".")[0] not in SECTION_MODULES:
        return obj  # only values parsed from params.yaml sections are traced (not a checkpoint's stored options)
    if not _TRACE_REGISTERED:
        _TRACE_REGISTERED.append(True)
        atexit.register(_write_trace)
    object.__setattr__(obj, "_params_where", where)
    object.__setattr__(obj, "__class__", _traced_class(type(obj)))
    return obj


def _write_trace() -> None:
    """At exit: the params keys read and the curator modules loaded (paths from ``src/``), for the test."""
    modules = sorted(f"src/{Path(m.__file__).as_posix().rsplit('/src/', 1)[-1]}" for name, m in list(sys.modules.items())
                     if name.split(".")[0] == "curator" and getattr(m, "__file__", None))
    folder = Path(os.environ[TRACE_ENV])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{os.getpid()}.json").write_text(json.dumps({"argv": sys.argv, "keys": sorted(_READ_KEYS),
                                                            "modules": modules}))


def register_section(name: str) -> typing.Callable[[type[T]], type[T]]:
    """Class decorator: the dataclass that validates top-level section ``name`` of params.yaml."""

    def deco(cls: type[T]) -> type[T]:
        _SECTIONS[name] = cls
        return cls

    return deco


def section_class(name: str) -> type:
    if name not in SECTION_MODULES:
        raise ConfigError(_unknown("", name, SECTION_MODULES))
    importlib.import_module(SECTION_MODULES[name])
    return _SECTIONS[name]


def _unknown(where: str, key: str, valid: Iterable[str]) -> str:
    valid = sorted(valid)
    full = f"{where}.{key}" if where else key
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown parameter '{full}'{hint}; valid keys here: {', '.join(valid)}"


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping at the top level")
    return data


def apply_overrides(cfg: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``cfg`` with ``a.b.c=value`` overrides applied (values parsed as YAML).

    The key must already exist, so a typo is caught instead of silently adding a new parameter.
    """
    out = _deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.path=value")
        dotted, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node: Any = out
        parts = dotted.split(".")
        for i, part in enumerate(parts):
            where = ".".join(parts[:i])
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(_unknown(where, part, node if isinstance(node, dict) else {}))
            if i == len(parts) - 1:
                node[part] = value
            else:
                node = node[part]
    return out


def _deepcopy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deepcopy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deepcopy(v) for v in obj]
    return obj


def load_params(path: str | Path = DEFAULT_PARAMS, overrides: Sequence[str] = ()) -> dict[str, Any]:
    return apply_overrides(load_yaml(path), overrides)


def load_section(
    name: str, path: str | Path = DEFAULT_PARAMS, overrides: Sequence[str] = (), cfg: Mapping | None = None,
    plugins: bool = True,
) -> Any:
    """Parse top-level section ``name`` of ``params.yaml`` (or of ``cfg``) into its dataclass.

    ``plugins=False`` skips the registry checks of :data:`SECTION_PLUGINS`: for a stage that reads a few plain
    keys of another stage's section (and so must not depend on, or list, the plug-in keys those checks read).
    """
    cls = section_class(name)
    cfg = load_params(path, overrides) if cfg is None else cfg
    if name not in cfg:
        raise ConfigError(f"missing section '{name}' in {path}")
    parsed = parse(cls, cfg[name], name)
    return validate_plugins(name, parsed) if plugins else parsed


def validate_plugins(name: str, params: T) -> T:
    """Check a parsed section's plug-in names and options against their registries (see SECTION_PLUGINS)."""
    if name not in SECTION_PLUGINS:
        return params
    return importlib.import_module(SECTION_PLUGINS[name]).validate(params)


def validate_params(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every section of a whole params mapping; return the parsed dataclasses by name."""
    unknown = [k for k in cfg if k not in SECTION_MODULES]
    if unknown:
        raise ConfigError(_unknown("", unknown[0], SECTION_MODULES))
    return {name: validate_plugins(name, parse(section_class(name), cfg[name], name))
            for name in SECTION_MODULES if name in cfg}


_PARSING: contextvars.ContextVar[str | None] = contextvars.ContextVar("curator_params_parsing", default=None)
"""The dotted key :func:`parse` is building (so that :func:`key_of` names a shared group's fields where they are)."""


def key_of(canonical: str) -> str:
    """The params key to name in a message about ``canonical`` (e.g. ``select.diversity.nlist``): the same field
    under the section being parsed when that is the same group elsewhere (``source_select.diversity.nlist``).

    Nested groups such as ``diversity`` are shared by ``select`` and ``source_select``; their checks name the
    field by its ``select`` key, and this puts it where the user wrote it.
    """
    where = _PARSING.get()
    group, _, name = canonical.rpartition(".")
    if where is None or not group or where.rpartition(".")[2] != group.rpartition(".")[2]:
        return canonical
    return f"{where}.{name}"


def parse(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, checking keys, types, choices and ``__post_init__`` ranges."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"'{where}' must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in fields:
            raise ConfigError(_unknown(where, str(key), fields))
    kwargs = {}
    for name, field in fields.items():
        sub = f"{where}.{name}"
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], sub)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing parameter '{sub}' ({_describe(hints[name])})")
    token = _PARSING.set(where)
    try:
        obj = cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"'{where}': {exc}") from exc
    finally:
        _PARSING.reset(token)
    return _trace(obj, where)


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of: " + ", ".join(map(str, get_args(tp)))
    return getattr(tp, "__name__", str(tp))


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"'{where}' = {value!r} matches none of {tp}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"'{where}' = {value!r} is not valid; choose one of: {', '.join(map(str, args))}")
        return value
    if origin in (list, Sequence, tuple):
        if value is None:
            value = []
        if not isinstance(value, list | tuple):
            raise ConfigError(f"'{where}' must be a list, got {value!r}")
        item = args[0] if args else Any
        return [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Mapping):
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"'{where}' must be a mapping, got {value!r}")
        val_t = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(val_t, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return parse(tp, value, where)  # type: ignore[arg-type]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{where}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{where}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"'{where}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{where}' must be a string, got {value!r}")
        return value
    return value


def check_range(where: str, value: float | None, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False) -> None:
    """Raise ConfigError unless ``lo <= value <= hi`` (``lo < value`` when ``lo_open``); None passes."""
    if value is None:
        return
    if lo is not None and (value < lo or (lo_open and value == lo)):
        op = ">" if lo_open else ">="
        raise ConfigError(f"'{where}' = {value} must be {op} {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"'{where}' = {value} must be <= {hi}")


def check_choice(where: str, value: str, choices: Iterable[str]) -> None:
    choices = sorted(choices)
    if value not in choices:
        close = difflib.get_close_matches(value, choices, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"'{where}' = '{value}' is not valid{hint}; choose one of: {', '.join(choices)}")
