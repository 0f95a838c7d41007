"""The streaming detector's speech_embedding front end over a whole stream."""

from __future__ import annotations

import numpy as np

from kws_assets.core.model.detect import EmbeddingStreamer


def test_whole_stream_embeddings_equal_the_clip_front_end() -> None:
    """On audio of one context length whose level never reaches the top_db floor, the streamed
    embeddings are the clip front end's (both graphs are frame-local)."""
    from kws_assets.core.features.speech_embedding import SpeechEmbeddingFrontEnd

    front_end = SpeechEmbeddingFrontEnd(threads=1)
    rng = np.random.default_rng(3)
    audio = (0.05 * rng.standard_normal(front_end.spec.context_samples)).astype(np.float32)
    int16 = np.clip(np.rint(audio * 32768.0), -32768, 32767)[None, :]
    expected = front_end.embed_mel(front_end.mel(int16))[0]
    streamed = EmbeddingStreamer(front_end, threads=1)(audio)
    assert streamed.shape == expected.shape == front_end.spec.shape
    np.testing.assert_allclose(streamed, expected, atol=1e-4)
    # a longer stream: the frames of a stretch are that stretch's frames
    longer = (0.05 * rng.standard_normal(4 * front_end.spec.context_samples)).astype(np.float32)
    whole = EmbeddingStreamer(front_end, threads=1)(longer)
    offset = 10
    part = EmbeddingStreamer(front_end, threads=1)(
        longer[offset * 1280 : offset * 1280 + 2 * 32000]
    )
    np.testing.assert_allclose(whole[offset : offset + len(part)], part, atol=1e-4)
