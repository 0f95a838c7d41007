"""One way to open an ONNX graph on the CPU, for every caller (the feature front end, the
artifact classifiers, the float-vs-int8 timing)."""

from __future__ import annotations

import os

import onnx
import onnxruntime as ort


def cpu_session(
    model: str | os.PathLike[str] | onnx.ModelProto, threads: int | None = None
) -> ort.InferenceSession:
    """An onnxruntime session on the CPU execution provider for a graph file or an in-memory
    graph; ``threads`` sets the intra-op threads (and one inter-op thread), None leaves
    onnxruntime's default."""
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
