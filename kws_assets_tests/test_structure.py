"""The structure rules of the package (README "Layout"): settings are a leaf, folders stay small,
the import graph has no cycle, a registered component's name is spelled only where it is
declared, and the definitions expose the same objects as before the move."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import kws_assets.core.families as family_registry
from kws_assets.core.corpus.connectors import REGISTRY as CONNECTORS
from kws_assets.core.corpus.connectors import registry as connector_registry
from kws_assets.core.families import families
from kws_assets.core.speech.engines import REGISTRY as ENGINES
from kws_assets.core.speech.engines import registry as engine_registry
from kws_assets.definitions import build_definitions

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kws_assets"
MAX_MODULES_PER_FOLDER = 12
BEFORE = Path(__file__).parent / "fixtures" / "definitions_before_one_house.json"
SETTINGS_PACKAGE = "kws_assets.settings"
# Strings equal to a component name that are not that component: each says why it stays.
NOT_A_COMPONENT = {
    ("kws_assets.core.corpus.batches", "manifest"): "a fingerprint payload key (the landed "
    "manifest file's hash); renaming it would change every landed batch's fingerprint",
    ("kws_assets.defs.assets.ingest", "piper"): "a Dagster `kinds` tag of synthetic_clips (the "
    "tools shown in the UI, beside espeak-ng), not an engine lookup",
    ("kws_assets.core.features.mfcc", "mfcc"): "the front end records its family's name in what "
    "it writes (checkpoints, artifact folders); the family module takes its name from here",
    ("kws_assets.core.features.speech_embedding", "speech_embedding"): "as for mfcc: "
    "front_end.json carries the family name the front end was built for",
    ("kws_assets.core.features.micro_frontend", "micro_wake_word"): "as for mfcc: "
    "front_end.json carries the family name the front end was built for",
    ("kws_assets.core.licenses", "speech_embedding"): "the name of Google's frozen model in the "
    "licence table (the graph the family wraps), not a family lookup",
    ("kws_assets.core.ship.manifest", "mfcc"): "the kws-manifest-v1 file format: the values a "
    "device manifest of that version may carry are fixed by the format, not by the registry",
    ("kws_assets.core.ship.manifest", "speech_embedding"): "the kws-manifest-v1 file format",
    ("kws_assets.core.tables", "mfcc"): "the MFCC table's feature column (every column has its "
    "home in tables.py), which happens to spell the family's name",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Project modules a file imports (``from a.b import c`` counts ``a.b.c`` when it is a
    module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name.split(".")[0] == "kws_assets"}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_settings_import_nothing_of_the_core():
    offenders = {
        name: sorted(deps)
        for name, deps in _graph().items()
        if name.startswith("kws_assets.settings")
        and any(not d.startswith("kws_assets.settings") for d in deps)
    }
    assert not offenders


CORE = PACKAGE / "core"
WHOLE_CONFIG = "KwsConfig"


def _names_whole_config(annotation: ast.expr | None) -> bool:
    """Whether an annotation names ``KwsConfig``: as a name, an attribute (``settings.KwsConfig``),
    inside a subscript or union, or in a string annotation (``"KwsConfig | None"``)."""
    if annotation is None:
        return False
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name) and node.id == WHOLE_CONFIG:
            return True
        if isinstance(node, ast.Attribute) and node.attr == WHOLE_CONFIG:
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                parsed = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                continue
            if _names_whole_config(parsed):
                return True
    return False


def _whole_config_uses(source: str, where: str) -> list[str]:
    """``where:function:parameter`` (``:return`` for a return annotation) of every function or
    method in the module ``source`` that takes or returns ``KwsConfig``, and ``where:import``
    where the module imports it."""
    found: list[str] = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{scope}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{scope}{child.name}"
                a = child.args
                params = [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
                found.extend(
                    f"{where}:{name}:{p.arg}"
                    for p in params
                    if p is not None and _names_whole_config(p.annotation)
                )
                if _names_whole_config(child.returns):
                    found.append(f"{where}:{name}:return")
                visit(child, f"{name}.")
            elif isinstance(child, ast.ImportFrom) and any(
                alias.name == WHOLE_CONFIG for alias in child.names
            ):
                found.append(f"{where}:import {WHOLE_CONFIG} from {child.module}")
            elif isinstance(child, ast.Import) and any(
                alias.name == "kws_assets.settings.pipeline" for alias in child.names
            ):
                found.append(f"{where}:import kws_assets.settings.pipeline")
            else:
                visit(child, scope)

    visit(ast.parse(source), "")
    return found


def test_whole_config_use_is_found_wherever_it_is_spelled():
    """The detector below sees every spelling of taking the whole config, and nothing else."""
    sample = """
from kws_assets.settings import AudioSettings, KwsConfig
import kws_assets.settings.pipeline
def a(cfg: KwsConfig) -> None: ...
def b(x: int, *, cfg: "KwsConfig | None" = None) -> None: ...
def c(cfgs: list[settings.KwsConfig]) -> None: ...
def d(audio: AudioSettings, kws_config_name: str) -> "KwsConfig": ...
class K:
    def m(self, cfg: KwsConfig) -> None:
        def inner(*more: KwsConfig) -> None: ...
"""
    where = "sample.py"
    assert _whole_config_uses(sample, where) == [
        f"{where}:import KwsConfig from kws_assets.settings",
        f"{where}:import kws_assets.settings.pipeline",
        f"{where}:a:cfg",
        f"{where}:b:cfg",
        f"{where}:c:cfgs",
        f"{where}:d:return",
        f"{where}:K.m:cfg",
        f"{where}:K.m.inner:more",
    ]


def test_the_core_takes_sections_not_the_whole_config():
    """A core function takes the settings sections it uses (or a small bundle of them the caller
    builds, e.g. ``CorpusReading``), never ``KwsConfig``; no core module imports it."""
    offenders = [
        use
        for path in sorted(CORE.rglob("*.py"))
        for use in _whole_config_uses(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not offenders, "the core takes the whole config here:\n" + "\n".join(offenders)


def test_no_folder_holds_more_than_twelve_modules():
    crowded = {}
    for folder in [
        PACKAGE,
        *[p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"],
    ]:
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        if len(modules) > MAX_MODULES_PER_FOLDER:
            crowded[str(folder.relative_to(ROOT))] = len(modules)
    assert not crowded


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    # A package's __init__ importing its own submodules is the package, not a cycle.
    edges = {
        n: {d for d in deps if not (d.startswith(n + ".") and n == d.rsplit(".", 1)[0])}
        for n, deps in graph.items()
    }
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                cycle.extend(
                    [*stack[stack.index(dep) :], node, dep] if dep in stack else [node, dep]
                )
                return True
            if state.get(dep) is None and visit(dep, [*stack, node]):
                return True
        state[node] = 2
        return False

    for name in sorted(edges):
        if state.get(name) is None and visit(name, []):
            break
    assert not cycle, " -> ".join(cycle)


def test_the_definitions_expose_what_they_did_before_the_move(tiny_config_file):
    defs = build_definitions(tiny_config_file)
    graph = defs.resolve_asset_graph()
    now = {
        "assets": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
        "checks": sorted(
            f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys
        ),
        "jobs": sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")),
        "sensors": sorted(s.name for s in defs.sensors or []),
        "schedules": sorted(s.name for s in defs.schedules or []),
        "resources": sorted((defs.resources or {}).keys()),
    }
    before = json.loads(BEFORE.read_text())
    for kind, names in before.items():
        assert set(names) <= set(now[kind]), (kind, sorted(set(names) - set(now[kind])))


def test_dg_list_defs_lists_the_assets(tiny_config_file, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dg"), "list", "defs", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KWS_CONFIG": str(tiny_config_file), "DAGSTER_HOME": str(home)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = json.loads(proc.stdout[proc.stdout.index("{") :])
    keys = {a["asset_key"] for a in listed.get("assets", [])}
    assert {"raw_corpus", "validated_set", "mfcc_table", "quantized_model", "evaluation"} <= keys


def _component_homes() -> dict[str, set[str]]:
    """Each registered engine name and connector kind -> the modules that may spell it: the
    module that declares it, its registry, and (as a prefix) the settings package."""
    homes: dict[str, set[str]] = {}
    for engine in ENGINES:
        homes.setdefault(engine.name, set()).update({engine.module, engine_registry.__name__})
    for connector in CONNECTORS:
        homes.setdefault(connector.kind, set()).update(
            {connector.module, connector_registry.__name__}
        )
    for family in families():
        homes.setdefault(family.name, set()).update(
            {type(family).__module__, family_registry.__name__}
        )
    return homes


def test_component_names_are_spelled_only_where_the_component_is_declared():
    """No engine, connector or model-family name as a whole string constant outside its own module,
    its registry and settings/: code that needs one asks the registry or the engine object, so
    adding, renaming or removing a component touches one module.  (Longer strings that merely
    contain a name — messages, docstrings, ``flite:slt`` — are not names.)"""
    homes = _component_homes()
    assert {"espeak", "flite", "festival", "piper", "manifest"} <= set(homes)
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if module == SETTINGS_PACKAGE or module.startswith(SETTINGS_PACKAGE + "."):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            allowed = homes.get(node.value)
            if allowed is None or module in allowed or (module, node.value) in NOT_A_COMPONENT:
                continue
            offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not offenders, "\n".join(offenders)


def test_the_exceptions_to_the_component_name_rule_are_still_needed():
    """An exception whose string is gone is removed, so the list cannot hide a new use."""
    for module, value in NOT_A_COMPONENT:
        path = ROOT / (module.replace(".", "/") + ".py")
        constants = {
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert value in constants, (module, value)


def test_asset_modules_never_import_each_other():
    """An asset module reads like a paragraph of core calls; what two of them share lives in the
    core or lib/, so one asset module never imports another."""
    prefix = "kws_assets.defs.assets."
    offenders = {
        name: sorted(d for d in deps if d.startswith(prefix))
        for name, deps in _graph().items()
        if name.startswith(prefix) and any(d.startswith(prefix) for d in deps)
    }
    assert not offenders


def test_the_model_room_never_imports_ship():
    """Arrows run ship -> model: export knows the networks, a network never knows its export."""
    offenders = {
        name: sorted(d for d in deps if d.startswith("kws_assets.core.ship"))
        for name, deps in _graph().items()
        if name.startswith("kws_assets.core.model")
        and any(d.startswith("kws_assets.core.ship") for d in deps)
    }
    assert not offenders
