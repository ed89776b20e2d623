"""Running one ONNX graph with onnxruntime on CPU: numpy in, float32 numpy out. No torch.

    g = Graph(onnx_bytes, batch=None)      # batch: the graph's fixed batch size, or None for any
    outputs = g(x)                          # x: (B, ...) floats -> [out0 (B, ...), ...] as float32

A session is made only from bytes that vae.onnx.validate has read (never from a path, so no tensor can
be fetched from another file), in the standard ONNX format, with no custom operator library. Its
threads never spin waiting for work (a class server's cores are shared), and every run stops after
RUN_SECONDS, so a graph that loops forever costs one error, not a server thread.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from .store import OnnxError
from ..untrusted import clip

RUN_SECONDS = 60.0  # far above any run of a 28x28 model on a batch of 2,000
FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def session(data: bytes, threads: int | None = None):
    """An onnxruntime InferenceSession over validated bytes; OnnxError with a sentence if it will not load."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only; they come back as exceptions anyway
    so.intra_op_num_threads = threads or max(1, min(4, os.cpu_count() or 1))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.load_model_format", "ONNX")  # never the flatbuffer ORT format
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception types derive from Exception only
        raise OnnxError(f"onnxruntime cannot load it: {ort_message(e)}.") from None


def ort_message(e: Exception) -> str:
    """onnxruntime's message without its '[ONNXRuntimeError] : 2 : INVALID_ARGUMENT :' prefix, one short line."""
    text = " ".join(str(e).split())
    if text.startswith("[ONNXRuntimeError]"):
        text = text.split(" : ", 3)[-1]
    return clip(text.rstrip(".").replace(". ", "; "), 160)  # one clause of our one sentence


OUT_OF_MEMORY = "It ran out of memory."  # what a run says when onnxruntime could not allocate (see out_of_memory)


def out_of_memory(e: BaseException) -> bool:
    """onnxruntime's error when an allocation failed (its arena's "Failed to allocate memory", bad_alloc)."""
    text = str(e)
    return isinstance(e, MemoryError) or "Failed to allocate" in text or "bad_alloc" in text


class Graph:
    """One graph with one float input, run in chunks of its fixed batch size if it has one."""

    def __init__(self, data: bytes, batch: int | None = None, threads: int | None = None):
        self.session = session(data, threads)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or inputs[0].type not in FLOAT_TYPES:
            raise OnnxError("The graph must take exactly one input of floats.")
        self.input = inputs[0].name
        self.dtype = FLOAT_TYPES[inputs[0].type]
        self.outputs = [o.name for o in outputs]
        self.batch = batch

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.asarray(x)
        if self.batch is None:
            return self._run(x)
        n, b = len(x), self.batch
        parts = []
        for i in range(0, n, b):
            chunk = x[i:i + b]
            if len(chunk) < b:  # pad the last chunk with copies of its first row
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], b - len(chunk), axis=0)])
            parts.append(self._run(chunk))
        return [np.concatenate([p[k][:min(b, n - i * b)] for i, p in enumerate(parts)])
                for k in range(len(self.outputs))]

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        import onnxruntime as ort

        options = ort.RunOptions()
        timer = threading.Timer(RUN_SECONDS, setattr, (options, "terminate", True))
        timer.daemon = True
        timer.start()
        try:
            out = self.session.run(self.outputs, {self.input: np.ascontiguousarray(x, self.dtype)}, options)
        except Exception as e:
            if options.terminate:
                raise OnnxError(f"The graph ran for more than {RUN_SECONDS:.0f} s and was stopped.") from None
            if out_of_memory(e):
                raise OnnxError(OUT_OF_MEMORY) from None
            raise OnnxError(f"onnxruntime could not run it: {ort_message(e)}.") from None
        finally:
            timer.cancel()
        return [np.asarray(o, dtype=np.float32) for o in out]
