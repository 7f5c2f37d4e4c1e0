"""Finding spec modules, their builder, and parsing `-p name=value` parameters."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.expr import SpecTypeError
from checker.spec import Spec, SpecError, SpecInfo


class LoadError(Exception):
    """A spec file that cannot be used: missing, not importable, no builder, bad parameter."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: Any
    default: Any

    @property
    def type_name(self) -> str:
        return getattr(self.type, "__name__", None) or str(self.type).replace("typing.", "")


@dataclass
class SpecModule:
    """A loaded spec module: its builder, declared variants and parameters."""

    path: Path
    source: str  # path as the user gave it (goes into traces)
    builder: Callable[..., Spec]
    info: SpecInfo
    parameters: dict[str, Parameter]
    module: types.ModuleType

    @property
    def name(self) -> str:
        return self.path.stem

    def build(self, overrides: dict[str, Any]) -> Spec:
        """Call the builder; the Spec records every parameter value, defaults included."""
        try:
            spec = self.builder(**overrides)
        except SpecError as e:
            raise SpecError(f"{self.source}: {e.element}", e.message) from e
        except SpecTypeError as e:
            raise SpecError(f"{self.source}: {self.builder.__name__}", str(e)) from e
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise LoadError(f"{self.source}: {self.builder.__name__}({_args(overrides)}) "
                            f"failed: {type(e).__name__}: {e}") from e
        spec.parameters = {n: overrides.get(n, p.default) for n, p in self.parameters.items()}
        if "variant" in spec.parameters:
            spec.variant = str(spec.parameters["variant"])
        return spec


def _args(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in overrides.items())


def spec_files(paths: list[str]) -> list[Path]:
    """Expand directories to the spec modules inside them (files with a builder)."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for f in sorted(path.glob("*.py")):
                if f.name.startswith("_"):
                    continue
                if "@specification" in f.read_text(errors="replace"):
                    out.append(f)
        elif path.exists():
            out.append(path)
        else:
            raise LoadError(f"{p}: no such file or directory")
    if not out:
        raise LoadError(f"{' '.join(paths)}: no spec modules found")
    return out


def load_module(path: Path, source: str | None = None) -> SpecModule:
    """Import a spec file (as part of its package when it lives in one)."""
    path = path.resolve() if path.exists() else path
    src = source or str(path)
    if not path.exists():
        raise LoadError(f"{src}: no such file")
    modname, root = _module_name(path)
    try:
        if root is not None:
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            mod = importlib.import_module(modname)
        else:
            spec = importlib.util.spec_from_file_location(modname, path)
            if spec is None or spec.loader is None:
                raise LoadError(f"{src}: cannot be imported")
            mod = importlib.util.module_from_spec(spec)
            sys.modules[modname] = mod
            spec.loader.exec_module(mod)
    except LoadError:
        raise
    except SpecError as e:
        raise LoadError(f"{src}: {e}") from e
    except Exception as e:
        raise LoadError(f"{src}: does not import: {type(e).__name__}: {e}") from e
    builders = [f for f in vars(mod).values()
                if callable(f) and hasattr(f, "__mmcheck__") and getattr(f, "__module__", "")
                == mod.__name__]
    if len(builders) != 1:
        raise LoadError(f"{src}: expected one @specification builder, found {len(builders)}")
    fn = builders[0]
    info: SpecInfo = fn.__mmcheck__
    params: dict[str, Parameter] = {}
    hints = typing.get_type_hints(fn)
    for p in inspect.signature(fn).parameters.values():
        if p.default is inspect.Parameter.empty:
            raise LoadError(f"{src}: parameter {p.name} of {fn.__name__} needs a default")
        params[p.name] = Parameter(p.name, hints.get(p.name, type(p.default)), p.default)
    return SpecModule(path, src, fn, info, params, mod)


def _module_name(path: Path) -> tuple[str, Path | None]:
    parts = [path.stem]
    d = path.parent
    while (d / "__init__.py").exists():
        parts.insert(0, d.name)
        d = d.parent
    if len(parts) == 1:
        return f"mmcheck_spec_{path.stem}", None
    return ".".join(parts), d


def parse_value(param: Parameter, text: str, where: str) -> Any:
    """Parse one `-p name=value` according to the builder's annotation."""
    t = param.type
    origin = typing.get_origin(t)
    try:
        if t is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if t is int:
            return int(text, 0)
        if t is str:
            return text
        if origin is tuple:
            args = typing.get_args(t)
            elem = args[0] if args else int
            items = [x for x in text.replace(" ", "").split(",") if x != ""]
            if elem is int:
                return tuple(int(x, 0) for x in items)
            return tuple(items)
        if origin is typing.Literal:
            if text not in typing.get_args(t):
                raise ValueError
            return text
    except ValueError:
        raise LoadError(f"{where}: parameter {param.name} expects {param.type_name}, "
                        f"got {text!r}") from None
    raise LoadError(f"{where}: parameter {param.name} has unsupported type {param.type_name}")


def parse_overrides(mod: SpecModule, pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise LoadError(f"{mod.source}: -p expects name=value, got {pair!r}")
        name, text = pair.split("=", 1)
        name = name.strip()
        if name not in mod.parameters:
            known = ", ".join(mod.parameters) or "none"
            raise LoadError(f"{mod.source}: unknown parameter {name!r} (known: {known})")
        out[name] = parse_value(mod.parameters[name], text.strip(), mod.source)
    if "variant" in out and out["variant"] not in mod.info.variants:
        raise LoadError(f"{mod.source}: unknown variant {out['variant']!r} "
                        f"(known: {', '.join(mod.info.variants)})")
    return out
