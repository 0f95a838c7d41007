"""The YAML 1.2 config file loader: which file is in force and how its relative paths resolve."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from kws_assets.settings.deploy import StorageSettings
from kws_assets.settings.pipeline import KwsConfig


class _Yaml12BoolLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans.

    YAML 1.1 reads ``yes``, ``no``, ``on`` and ``off`` as booleans — four of the Speech Commands
    keywords — so an unquoted keyword list would silently turn into True/False.
    """


_Yaml12BoolLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12BoolLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse_yaml(text: str) -> object:
    return yaml.load(text, Loader=_Yaml12BoolLoader)


DEFAULT_CONFIG_NAME = "kws.yaml"

CONFIG_ENV_VAR = "KWS_CONFIG"


def config_path() -> Path | None:
    """The config file in force: ``$KWS_CONFIG``, else ``./kws.yaml`` if present, else None."""
    env = os.environ.get(CONFIG_ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_ENV_VAR}={env} does not name a file")
        return path
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local if local.is_file() else None


def _relative_local(location: str) -> bool:
    """True for a relative local path (resolved against the config file's folder); URLs and
    absolute paths stay as written."""
    return "://" not in location and not Path(location).expanduser().is_absolute()


def load_settings(path: str | os.PathLike[str] | None = None) -> KwsConfig:
    """Load and validate a config file; relative storage roots resolve against the file's folder.

    The settings exactly as written: voices a non-English config leaves out are filled in by
    :func:`kws_assets.config.load_config`, which knows the installed espeak-ng voices."""
    if path is None:
        path = config_path()
    if path is None:
        return KwsConfig()
    path = Path(path)
    raw = parse_yaml(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    base = path.resolve().parent
    storage = raw.setdefault("storage", {}) or {}
    root = storage.get("root", StorageSettings().root)
    if _relative_local(root):
        storage["root"] = str(base / root)
    raw["storage"] = storage
    for src in raw.get("sources", []) or []:
        if isinstance(src, dict) and "root" in src and _relative_local(src["root"]):
            src["root"] = str(base / src["root"])
    augment = raw.get("augment")
    if (
        isinstance(augment, dict)
        and augment.get("noise_folder")
        and not Path(augment["noise_folder"]).expanduser().is_absolute()
    ):
        augment["noise_folder"] = str(base / augment["noise_folder"])
    evaluation = raw.get("evaluation")
    if isinstance(evaluation, dict):
        for real in evaluation.get("real_sources") or []:
            if (
                isinstance(real, dict)
                and real.get("manifest")
                and _relative_local(real["manifest"])
            ):
                real["manifest"] = str(base / real["manifest"])
    return KwsConfig.model_validate(raw)
