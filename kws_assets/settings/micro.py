"""Settings of the ``micro_wake_word`` model family: the streaming network ESPHome runs.

Section ``micro_wake_word`` of the pipeline config.  The front end is fixed (the TFLite-Micro
audio front end ESPHome computes on the device: 40 features every 10 ms), so only the network,
its short training and the ESPHome files are set here.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kws_assets.settings.base import StrictSettings


class MicroWakeWordSettings(StrictSettings):
    """The streaming network (stride 3, ring buffers), its training and its ESPHome files."""

    channels: int = Field(32, ge=4, description="Channels of the stem and every block.")
    stem_kernel: int = Field(5, ge=3, description="Frames the stride-3 stem convolution sees.")
    block_kernels: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [5, 9, 13],
        description="Depthwise kernel (in 30-ms steps) of each block; with the stem they must "
        "leave at least one step of a 1-s clip for the final mean.",
    )
    dropout: float = Field(0.1, ge=0, lt=1)
    max_epochs: int = Field(
        8,
        ge=1,
        description="Epochs at most (and never more than train.max_epochs); the train "
        "section's other settings apply.",
    )
    min_epochs: int = Field(4, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    max_shift_frames: int = Field(
        20,
        ge=0,
        description="Training shift of up to this many 10-ms frames either way (a streaming "
        "model meets the word at every offset), then one time mask and one feature mask.",
    )
    max_time_mask_frames: int = Field(8, ge=0)
    max_feature_mask: int = Field(4, ge=0, description="Widest band of the 40 features masked.")
    keywords: list[str] = Field(
        default_factory=list,
        description="Keywords that get an ESPHome model (one .tflite + JSON each, ~10 s of "
        "conversion apiece); empty = every keyword.",
    )
    calibration_clips: int = Field(
        32, ge=1, description="Validation clips streamed through the int8 calibration."
    )
    sliding_window_size: int = Field(
        5,
        ge=1,
        description="ESPHome's probability average (inferences, 30 ms each) when the evaluation "
        "selected no operating point; a selected point's smoothing is converted instead.",
    )
    probability_cutoff: float = Field(
        0.9, gt=0, lt=1, description="The cutoff shipped when no operating point was selected."
    )
    trained_languages: list[str] = Field(default_factory=lambda: ["en"])
    author: str = "kws_assets"
    website: str = ""
