"""bench/onnx_flops.py against hand-counted FLOPs of tiny graphs, and on the speech-embedding
front end's two real graphs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bench.onnx_flops import count_flops
from kws_assets.core.features.speech_embedding import (
    MEL_BANDS,
    MEL_WINDOW_FRAMES,
    EmbeddingSpec,
    mel_frames,
    model_paths,
    per_clip_mel_graph,
    sequence_embedding_graph,
)


def _model(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, list[int | str]],
    weights: dict[str, tuple[int, ...]],
    output: str = "y",
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.zeros(s, np.float32), n) for n, s in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_conv_counts_multiply_adds_and_bias_apart() -> None:
    # x [2, 3, 10, 8], w [4, 3, 3, 3], no padding -> y [2, 4, 8, 6]
    conv = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3])
    model = _model([conv], {"x": ["n", 3, 10, 8]}, {"w": (4, 3, 3, 3), "b": (4,)})
    flops = count_flops(model, {"x": [2, 3, 10, 8]})
    out = 2 * 4 * 8 * 6
    assert flops.dense == {"Conv": 2 * out * 3 * 3 * 3}
    assert flops.elementwise == {"Conv bias": out}
    assert flops.total == 2 * out * 27 + out and flops.uncounted == {}


def test_grouped_and_depthwise_conv() -> None:
    # 8 -> 6 channels in 2 groups (4 inputs per output), 1-D kernel 5, stride 2, pads 2:
    # length 20 -> (20 + 4 - 5) // 2 + 1 = 10
    grouped = helper.make_node(
        "Conv", ["x", "w"], ["y"], group=2, kernel_shape=[5], strides=[2], pads=[2, 2]
    )
    model = _model([grouped], {"x": [1, 8, 20]}, {"w": (6, 4, 5)})
    assert count_flops(model, {"x": [1, 8, 20]}).dense == {"Conv": 2 * (6 * 10) * 4 * 5}
    depthwise = helper.make_node("Conv", ["x", "w"], ["y"], group=8, kernel_shape=[3, 3])
    model = _model([depthwise], {"x": [1, 8, 7, 7]}, {"w": (8, 1, 3, 3)})
    assert count_flops(model, {"x": [1, 8, 7, 7]}).dense == {"Conv": 2 * (8 * 5 * 5) * 9}


def test_matmul_with_batch_dims_and_broadcast() -> None:
    # [3, 1, 5, 7] @ [4, 7, 2] -> [3, 4, 5, 2]: 2 x 3*4 batches x 5*2 outputs x K=7
    matmul = helper.make_node("MatMul", ["a", "b"], ["y"])
    model = _model([matmul], {"a": [3, 1, 5, 7], "b": [4, 7, 2]}, {})
    flops = count_flops(model, {"a": [3, 1, 5, 7], "b": [4, 7, 2]})
    assert flops.dense == {"MatMul": 2 * 3 * 4 * 5 * 2 * 7}


def test_gemm_with_transposed_a_and_bias() -> None:
    # A^T with A [6, 4] (K=6, M=4), B [6, 3]: y [4, 3]
    gemm = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transA=1)
    model = _model([gemm], {"a": [6, 4]}, {"b": (6, 3), "c": (3,)})
    flops = count_flops(model, {"a": [6, 4]})
    assert flops.dense == {"Gemm": 2 * 4 * 3 * 6} and flops.elementwise == {"Gemm bias": 12}


def test_elementwise_pooling_moves_and_unknown_ops() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Max", ["r", "x", "x"], ["m"]),  # variadic: 2 per element
        helper.make_node("MaxPool", ["m"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Transpose", ["p"], ["t"], perm=[0, 1, 3, 2]),
        helper.make_node("Softmax", ["t"], ["y"]),  # not known: named, not counted
    ]
    model = _model(nodes, {"x": [1, 2, 4, 6]}, {})
    flops = count_flops(model, {"x": [1, 2, 4, 6]})
    assert flops.dense == {}
    assert flops.elementwise == {"Relu": 48, "Max": 96, "MaxPool": 2 * 2 * 3 * 4}
    assert flops.uncounted == {"Softmax": 1}
    assert flops.scaled(3).total == 3 * flops.total
    assert (flops + flops).elementwise["Max"] == 192


def test_shapes_must_be_resolvable() -> None:
    matmul = helper.make_node("MatMul", ["a", "b"], ["y"])
    model = _model([matmul], {"a": ["n", 5], "b": [5, 2]}, {})
    with pytest.raises(ValueError, match="unknown after shape inference"):
        count_flops(model, {"b": [5, 2]})  # "n" left symbolic
    with pytest.raises(ValueError, match="no graph input"):
        count_flops(model, {"nonesuch": [1]})
    with pytest.raises(ValueError, match="rank"):
        count_flops(model, {"a": [1, 2, 5]})


def test_real_front_end_graphs() -> None:
    """The mel graph is the dense DFT it contains; one embedding window's count is stable
    (linear in the batch); the sequence graph shares the windows' overlap."""
    spec = EmbeddingSpec()
    mel_path, embedding_path = model_paths(spec)
    samples = spec.context_samples
    mel = count_flops(per_clip_mel_graph(onnx.load(mel_path))[0], {"input": [1, samples]})
    frames = (samples - 512) // 160 + 1
    assert frames == mel_frames(samples)
    assert mel.dense == {"Conv": 2 * 2 * 257 * frames * 512, "MatMul": 2 * frames * 32 * 257}
    assert mel.uncounted == {} and mel.elementwise_total < 0.01 * mel.total

    window_graph = onnx.load(embedding_path)
    name = window_graph.graph.input[0].name
    one = count_flops(window_graph, {name: [1, MEL_WINDOW_FRAMES, MEL_BANDS, 1]})
    four = count_flops(window_graph, {name: [4, MEL_WINDOW_FRAMES, MEL_BANDS, 1]})
    assert 50e6 < one.total < 150e6  # ~85 MFLOP, 20 small Convs
    assert four.total == pytest.approx(4 * one.total) and one.uncounted == {}
    assert one.dense_total > 0.95 * one.total

    sequence_graph = sequence_embedding_graph(window_graph)
    seq_name = sequence_graph.graph.input[0].name
    same = count_flops(sequence_graph, {seq_name: [1, MEL_WINDOW_FRAMES, MEL_BANDS, 1]})
    assert same.dense == one.dense  # one window's worth of frames: the same convolutions
    whole = count_flops(sequence_graph, {seq_name: [1, mel_frames(samples), MEL_BANDS, 1]})
    assert one.total < whole.total < spec.n_frames * one.total
