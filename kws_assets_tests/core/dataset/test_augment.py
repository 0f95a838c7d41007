"""Waveform augmentation: each transform does what it claims, measured on generated audio."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from kws_assets.core.audio.io import colored_noise, write_wav
from kws_assets.core.dataset import augment as A
from kws_assets.core.dataset.splits import assign_splits
from kws_assets.core.storage.clip_store import ClipStore
from kws_assets.settings import AudioSettings, AugmentSettings, SplitSettings

SR = 16000


def sine(freq: float, seconds: float = 1.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def band_energy_db(x: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / SR)
    return 10 * math.log10(spectrum[(freqs >= low) & (freqs < high)].sum() + 1e-20)


def peak_frequency(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / SR)[np.argmax(spectrum)])


@pytest.mark.parametrize("snr", [-5.0, 0.0, 7.5, 20.0])
def test_noise_is_mixed_at_the_requested_snr(snr: float) -> None:
    rng = np.random.default_rng(0)
    speech = sine(440) * (np.arange(SR) < SR // 2)  # active half the clip
    noise = colored_noise("pink", SR // 3, rng)  # shorter than the clip: tiled
    mixed = A.add_noise_at_snr(speech, noise, snr)
    assert mixed.shape == speech.shape
    assert A.snr_db(speech, mixed - speech) == pytest.approx(snr, abs=0.05)


def test_noise_of_zero_power_is_refused() -> None:
    with pytest.raises(ValueError, match="non-zero power"):
        A.add_noise_at_snr(sine(440), np.zeros(100, np.float32), 10.0)


def test_babble_sums_talkers_at_unit_rms_and_skips_silent_ones() -> None:
    rng = np.random.default_rng(1)
    talkers = [sine(300), sine(500, amplitude=0.01), np.zeros(SR, np.float32)]
    out = A.babble(talkers, SR, rng)
    assert math.sqrt(A.power(out)) == pytest.approx(1.0, rel=1e-4)
    # both voiced talkers are present with equal weight despite a 30x level difference
    assert band_energy_db(out, 280, 320) == pytest.approx(band_energy_db(out, 480, 520), abs=1.0)
    with pytest.raises(ValueError, match="non-silent"):
        A.babble([np.zeros(SR, np.float32)], SR, rng)


@pytest.mark.parametrize("shift", [1234, -987, 0])
def test_time_shift_moves_by_exactly_that_many_samples(shift: int) -> None:
    x = np.random.default_rng(2).standard_normal(SR).astype(np.float32)
    out = A.time_shift(x, shift)
    if shift >= 0:
        np.testing.assert_array_equal(out[shift:], x[: SR - shift])
        assert not out[:shift].any()
    else:
        np.testing.assert_array_equal(out[: SR + shift], x[-shift:])
        assert not out[SR + shift :].any()
    # the cross-correlation peak sits at the shift
    corr = np.correlate(out, x, mode="full")
    assert int(np.argmax(corr)) - (SR - 1) == shift


def test_gain_changes_level_by_its_decibels() -> None:
    x = sine(300)
    for gain in (-12.0, 4.5):
        ratio_db = 10 * math.log10(A.power(A.apply_gain(x, gain)) / A.power(x))
        assert ratio_db == pytest.approx(gain, abs=0.01)


@pytest.mark.parametrize("factor", [0.9, 1.12])
def test_speed_changes_duration_and_pitch_together(factor: float) -> None:
    x = sine(500)
    out = A.change_speed(x, SR, factor)
    assert out.size == pytest.approx(SR / factor, abs=2)
    assert peak_frequency(out) == pytest.approx(500 * factor, rel=0.01)


@pytest.mark.parametrize("semitones", [2.0, -1.5])
def test_pitch_shift_keeps_duration(semitones: float) -> None:
    x = sine(440)
    out = A.shift_pitch(x, SR, semitones)
    assert out.size == x.size
    assert peak_frequency(out) == pytest.approx(440 * 2 ** (semitones / 12), rel=0.01)


def test_telephone_band_removes_energy_outside_300_to_3400_hz() -> None:
    x = colored_noise("white", 2 * SR, np.random.default_rng(3)) * 0.1
    out = A.telephone_band(x, SR)
    assert band_energy_db(out, 20, 150) < band_energy_db(x, 20, 150) - 20
    assert band_energy_db(out, 5000, 8000) < band_energy_db(x, 5000, 8000) - 25
    assert band_energy_db(out, 800, 2500) == pytest.approx(band_energy_db(x, 800, 2500), abs=1.5)


def test_8khz_round_trip_removes_everything_above_4khz() -> None:
    x = colored_noise("white", SR, np.random.default_rng(4)) * 0.1
    out = A.resample_round_trip(x, SR)
    assert out.size == x.size
    # above the 8 kHz channel's Nyquist frequency nothing is left but the resampler's skirt
    assert band_energy_db(out, 4600, 8000) < band_energy_db(x, 4600, 8000) - 30
    assert band_energy_db(out, 4000, 8000) < band_energy_db(x, 4000, 8000) - 15
    assert band_energy_db(out, 300, 3500) == pytest.approx(band_energy_db(x, 300, 3500), abs=0.5)


def _decay_time_s(rir: np.ndarray) -> float:
    """RT60 from Schroeder backward integration, extrapolated from the -5..-25 dB slope (T20)."""
    energy = np.cumsum((rir.astype(np.float64) ** 2)[::-1])[::-1]
    curve = 10 * np.log10(energy / energy[0])
    t5 = np.argmax(curve <= -5) / SR
    t25 = np.argmax(curve <= -25) / SR
    return 3.0 * (t25 - t5)


@pytest.mark.parametrize("rt60", [0.3, 0.7])
def test_synthetic_rir_decays_at_its_rt60(rt60: float) -> None:
    rir = A.synthetic_rir(SR, rt60, np.random.default_rng(5))
    assert int(np.argmax(np.abs(rir))) == int(A.RIR_DIRECT_DELAY_S * SR)
    assert _decay_time_s(rir) == pytest.approx(rt60, rel=0.25)


def test_rir_adds_a_reverberation_tail_after_the_sound_stops() -> None:
    burst = sine(700) * (np.arange(SR) < 0.3 * SR)
    tail = slice(int(0.35 * SR), int(0.6 * SR))
    assert not burst[tail].any()
    short = A.apply_rir(burst, A.synthetic_rir(SR, 0.2, np.random.default_rng(6)))
    long = A.apply_rir(burst, A.synthetic_rir(SR, 0.8, np.random.default_rng(6)))
    tail_db = [10 * math.log10(A.power(y[tail]) / A.power(y)) for y in (short, long)]
    assert tail_db[0] > -45  # audible reverberation where the dry clip is silent
    assert tail_db[1] > tail_db[0] + 6  # a longer RT60 leaves a louder tail
    # the direct sound stays where it was: the onset does not move
    assert int(np.argmax(np.abs(long) > 0.05)) == pytest.approx(
        int(np.argmax(np.abs(burst) > 0.05)), abs=5
    )


ALL_ON = AugmentSettings(
    noise_probability=1,
    rir_probability=1,
    shift_probability=1,
    gain_probability=1,
    speed_probability=1,
    pitch_probability=1,
    telephone_probability=1,
    resample_8k_probability=1,
    noise_source_weights={"colored": 1.0, "babble": 0.0, "folder": 0.0},
)
ALL_OFF = AugmentSettings(
    noise_probability=0,
    rir_probability=0,
    shift_probability=0,
    gain_probability=0,
    speed_probability=0,
    pitch_probability=0,
    telephone_probability=0,
    resample_8k_probability=0,
)


def test_probabilities_decide_which_transforms_apply() -> None:
    sources = A.NoiseSources()
    assert A.draw_params(ALL_OFF, np.random.default_rng(0), sources, SR) == {}
    on = A.draw_params(ALL_ON, np.random.default_rng(0), sources, SR)
    assert set(on) == set(A.TRANSFORM_KEYS)
    x = sine(440)
    np.testing.assert_array_equal(A.apply_params(x, SR, {}), x)
    counts = dict.fromkeys(A.TRANSFORM_KEYS, 0)
    settings = AugmentSettings(noise_source_weights={"colored": 1.0, "babble": 0.0, "folder": 0.0})
    draws = 400
    for seed in range(draws):
        params = A.draw_params(settings, np.random.default_rng(seed), sources, SR)
        for key in params:
            counts[key] += 1
        if "noise" in params:
            assert settings.snr_db_range[0] <= params["noise"]["snr_db"] <= settings.snr_db_range[1]
        if "speed" in params:
            assert settings.speed_range[0] <= params["speed"] <= settings.speed_range[1]
        if "shift_samples" in params:
            assert abs(params["shift_samples"]) <= settings.max_shift_ms * SR / 1000
    for key, probability in (
        ("noise", settings.noise_probability),
        ("rir", settings.rir_probability),
        ("telephone", settings.telephone_probability),
    ):
        assert counts[key] / draws == pytest.approx(probability, abs=0.08)


def test_a_recipe_renders_the_same_clip_every_time_and_stays_in_range() -> None:
    x = sine(440, amplitude=0.9)
    params = A.draw_params(ALL_ON, np.random.default_rng(11), A.NoiseSources(), SR)
    params["gain_db"] = 5.0
    first, second = A.apply_params(x, SR, params), A.apply_params(x, SR, params)
    np.testing.assert_array_equal(first, second)
    assert first.shape == x.shape
    assert float(np.abs(first).max()) <= A.PEAK_LIMIT + 1e-6
    other = A.draw_params(ALL_ON, np.random.default_rng(12), A.NoiseSources(), SR)
    assert not np.allclose(A.apply_params(x, SR, other), first)


def _clip_rows(store: ClipStore, rng: np.random.Generator) -> pl.DataFrame:
    speakers = [f"tts:voice{i}" for i in range(12)]
    splits = dict(zip(speakers, assign_splits(speakers, SplitSettings()), strict=True))
    rows = []
    for index, speaker in enumerate(speakers):
        for label in ("yes", "_unknown_", "_silence_"):
            clip_id = f"{index:02d}{label}"
            samples = (
                sine(300 + 40 * index)
                if label != "_silence_"
                else colored_noise("pink", SR, rng) * 0.001
            )
            uri = store.put(store.key_for("synthetic", label, clip_id), samples, SR)
            rows.append(
                {
                    "clip_id": clip_id,
                    "uri": uri,
                    "label": label,
                    "source": "synthetic",
                    "speaker": speaker,
                    "language": "en",
                    "origin_id": f"o{clip_id}",
                    "start_s": 0.0,
                    "sample_rate": SR,
                    "num_samples": SR,
                    "split": splits[speaker],
                }
            )
    return pl.DataFrame(rows)


def test_augmented_clips_point_at_their_source_and_stay_in_its_split(tmp_path) -> None:
    store = ClipStore.at(tmp_path / "clips")
    clips = _clip_rows(store, np.random.default_rng(7))
    settings = AugmentSettings(
        copies_per_clip=2,
        noise_probability=1.0,
        noise_source_weights={"colored": 0.0, "babble": 1.0, "folder": 0.0},
    )
    rows, failures = A.augment_clips(
        clips, settings, AudioSettings(), store, lambda uri: store.read(uri)
    )
    table = A.augmented_table(rows)
    assert not failures
    sources = clips.filter((pl.col("split") == "train") & (pl.col("label") != "_silence_"))
    assert table.height == 2 * sources.height
    assert set(table["origin_id"]) == set(sources["clip_id"])
    assert table["clip_id"].n_unique() == table.height
    by_id = {r["clip_id"]: r for r in clips.iter_rows(named=True)}
    for row in table.iter_rows(named=True):
        source = by_id[row["origin_id"]]
        assert (row["label"], row["speaker"], row["split"]) == (
            source["label"],
            source["speaker"],
            source["split"],
        )
        params = json.loads(row["augment_params"])
        talkers = params["noise"]["talkers"]
        assert row["origin_id"] not in talkers
        for talker in talkers:  # babble is other non-keyword speech from the same split only
            assert by_id[talker]["label"] == "_unknown_"
            assert by_id[talker]["split"] == source["split"]
        # the recipe is the whole story: re-rendering it from the source gives the stored clip
        rendered = A.apply_params(
            store.read(source["uri"]).samples,
            SR,
            params,
            A.NoiseSources(talkers, lambda c: store.read(by_id[c]["uri"]).samples),
        )
        np.testing.assert_allclose(store.read(row["uri"]).samples, rendered, atol=1.5 / 32768)
    # speakers stay split-disjoint with the augmented copies added
    combined = pl.concat([clips, table.select(clips.columns)])
    assert combined.group_by("speaker").agg(pl.col("split").n_unique())["split"].max() == 1


def test_a_changed_babble_pool_keeps_most_copies(tmp_path) -> None:
    # a keyword freed or added moves clips in or out of the _unknown_ talkers: the copies of
    # the other clips keep their recipes (ids, stored audio) unless they drew a moved talker
    store = ClipStore.at(tmp_path / "clips")
    clips = _clip_rows(store, np.random.default_rng(8))
    settings = AugmentSettings(copies_per_clip=2, noise_source_weights={"babble": 1.0})
    first, _ = A.augment_clips(clips, settings, AudioSettings(), store, lambda u: store.read(u))
    extra = (  # one more talker in the train split, its id sorted among the others'
        clips.filter((pl.col("label") == "_unknown_") & (pl.col("split") == "train"))
        .head(1)
        .with_columns((pl.col("clip_id") + "x").alias("clip_id"))
    )
    grown, _ = A.augment_clips(
        pl.concat([clips, extra]), settings, AudioSettings(), store, lambda u: store.read(u)
    )
    before = {r["clip_id"] for r in first}
    after = {r["clip_id"] for r in grown if not r["origin_id"].endswith("x")}
    assert len(after) == len(before)
    assert len(before & after) >= 0.6 * len(before)


def test_a_rerun_reuses_the_stored_copies_without_reading_their_sources(tmp_path) -> None:
    store = ClipStore.at(tmp_path / "clips")
    clips = _clip_rows(store, np.random.default_rng(8))
    settings = AugmentSettings(copies_per_clip=2, noise_source_weights={"colored": 1.0})
    first, _ = A.augment_clips(clips, settings, AudioSettings(), store, lambda u: store.read(u))
    reads: list[str] = []

    def read(uri: str):
        reads.append(uri)
        return store.read(uri)

    again, failures = A.augment_clips(clips, settings, AudioSettings(), store, read)
    assert again == first and not failures and first
    assert reads == []  # every copy was stored: no source clip read, none rendered again


def test_noise_folder_skips_unreadable_files_and_crops_recordings(tmp_path) -> None:
    folder = tmp_path / "noise"
    write_wav(folder / "hum.wav", sine(60, seconds=0.5), SR)
    write_wav(folder / "quiet.wav", np.zeros(SR, np.float32), SR)
    (folder / "sub").mkdir()
    (folder / "sub" / "broken.wav").write_bytes(b"RIFF....not audio")
    bank = A.NoiseFolder.scan(folder, SR)
    assert [p.name for p in bank.files] == ["hum.wav", "quiet.wav"]
    assert list(bank.problems) == [str(folder / "sub" / "broken.wav")]
    crop = bank.crop("hum.wav", 1000, SR)
    assert crop.size == SR and A.power(crop) > 0
    with pytest.raises(A.AudioReadError):
        bank.crop("quiet.wav", 0, SR)
    settings = AugmentSettings(
        noise_probability=1.0, noise_source_weights={"colored": 0.0, "babble": 0.0, "folder": 1.0}
    )
    drawn = {
        A.draw_params(settings, np.random.default_rng(seed), A.NoiseSources(folder=bank), SR)[
            "noise"
        ]["file"]
        for seed in range(12)
    }
    assert drawn == {"hum.wav", "quiet.wav"}  # never the unreadable file
    with pytest.raises(FileNotFoundError):
        A.NoiseFolder.scan(tmp_path / "missing", SR)


def test_a_copy_whose_noise_cannot_be_read_is_a_failure_not_a_crash(tmp_path) -> None:
    store = ClipStore.at(tmp_path / "clips")
    clips = _clip_rows(store, np.random.default_rng(8))
    folder = tmp_path / "noise"
    write_wav(folder / "quiet.wav", np.zeros(SR, np.float32), SR)
    settings = AugmentSettings(
        noise_probability=1.0, noise_source_weights={"colored": 0.0, "babble": 0.0, "folder": 1.0}
    )
    rows, failures = A.augment_clips(
        clips,
        settings,
        AudioSettings(),
        store,
        lambda uri: store.read(uri),
        A.NoiseFolder.scan(folder, SR),
    )
    train = clips.filter((pl.col("split") == "train") & (pl.col("label") != "_silence_"))
    assert not rows and len(failures) == train.height
    assert all("quiet.wav" in f.reason and "silent" in f.reason for f in failures)


def test_augmented_clips_are_identical_with_one_and_two_worker_processes(tmp_path) -> None:
    settings = AugmentSettings(
        copies_per_clip=2,
        noise_probability=1.0,
        noise_source_weights={"colored": 1.0, "babble": 1.0, "folder": 0.0},
    )
    outputs = {}
    for workers in (1, 2):
        store = ClipStore.at(tmp_path / f"clips{workers}")
        clips = _clip_rows(store, np.random.default_rng(9))
        rows, failures = A.augment_clips(
            clips,
            settings,
            AudioSettings(),
            store,
            lambda uri, store=store: store.read(uri),
            workers=workers,
            batch_size=2,  # several batches, so both workers take some
        )
        assert not failures
        table = A.augmented_table(rows)
        audio = [store.read_bytes(uri) for uri in table["uri"]]
        outputs[workers] = (table.drop("uri"), audio)
    one, two = outputs[1], outputs[2]
    assert one[0].height > 4
    assert one[0].equals(two[0])  # same rows, recipes and order
    assert one[1] == two[1]  # same audio, byte for byte
