"""What a user would pick instead of torchvision's deform_conv2d on a CPU, for the benchmark.

* ONNX Runtime: the ONNX ``DeformConv`` operator (opset 19), one-node model.
* OpenVINO: ``opset8.deformable_convolution`` with ``bilinear_interpolation_pad=True`` (which is
  torchvision's border rule: a position within one pixel outside the image still samples the
  in-image corners), plus the bias.

Both are optional benchmark dependencies (``requirements-bench.txt``), never test dependencies.
Every peer is built for float32, a 3x3 kernel, stride 1, padding 1, dilation 1, one weight and one
offset group, with mask and bias, and a fixed thread count; ``make`` returns a callable that runs
one inference on the given numpy inputs and returns the output as a numpy array.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

PEERS = ("onnxruntime", "openvino")
INSTALL_HINT = "install the optional benchmark dependencies: .venv/bin/pip install -r requirements-bench.txt"


def available(name: str) -> str | None:
    """None if the peer can be imported, else why not."""
    try:
        __import__(name)
    except ImportError as e:
        return f"{name}: {e}; {INSTALL_HINT}"
    return None


def version(name: str) -> str:
    return getattr(__import__(name), "__version__", "?")


def make(name: str, inputs: dict[str, np.ndarray], threads: int) -> Callable[[], np.ndarray]:
    return {"onnxruntime": _onnxruntime, "openvino": _openvino}[name](inputs, threads)


def _onnxruntime(t: dict[str, np.ndarray], threads: int) -> Callable[[], np.ndarray]:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    names = ["input", "weight", "offset", "bias", "mask"]
    node = helper.make_node("DeformConv", names, ["out"], kernel_shape=list(t["weight"].shape[2:]),
                            pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1, offset_group=1)
    graph = helper.make_graph(
        [node], "deform_conv2d",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(t[n].shape)) for n in names],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(t["input"].shape[:1]) + [t["weight"].shape[0]]
                                       + list(t["offset"].shape[2:]))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    # The IR version opset 19 came with: a newer onnx stamps its own, which an older runtime refuses.
    model.ir_version = 9
    onnx.checker.check_model(model)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feed = {n: t[n] for n in names}
    return lambda: sess.run(None, feed)[0]


def _openvino(t: dict[str, np.ndarray], threads: int) -> Callable[[], np.ndarray]:
    import openvino as ov
    import openvino.opset8 as ops

    params = {n: ops.parameter(list(t[n].shape), np.float32, name=n) for n in ("input", "offset", "mask")}
    weight = ops.constant(t["weight"])
    conv = ops.deformable_convolution(params["input"], params["offset"], weight, strides=[1, 1],
                                      pads_begin=[1, 1], pads_end=[1, 1], dilations=[1, 1],
                                      mask=params["mask"], group=1, deformable_group=1,
                                      bilinear_interpolation_pad=True)
    out = ops.add(conv, ops.constant(t["bias"].reshape(1, -1, 1, 1)))
    model = ov.Model([out], list(params.values()), "deform_conv2d")
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                      "INFERENCE_PRECISION_HINT": "f32",
                                                      "PERFORMANCE_HINT": "LATENCY"})
    req = compiled.create_infer_request()
    feed: dict[Any, np.ndarray] = {n: t[n] for n in params}

    def run() -> np.ndarray:
        req.infer(feed)
        return req.get_output_tensor(0).data

    return run
