"""What every settings section shares: strict frozen models, the reserved labels, language codes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


UNKNOWN_LABEL = "_unknown_"

SILENCE_LABEL = "_silence_"

SPEECH_COMMANDS_TEN = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def primary_language(code: str) -> str:
    """``"es_MX"`` -> ``"es"``."""
    return str(code).strip().lower().replace("_", "-").split("-", 1)[0]
