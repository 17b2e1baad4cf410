"""ONNX int8 leaves float the ops int8 cannot carry (export.onnx_fallback), and the runtime keeps them float.

The ops are ranked by TFLite's per-op int8 error and found in the ONNX graph by Keras layer name;
the tiny run's real graph, real quantizer and real ONNX Runtime are used throughout.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from export import int8_fallback as fb
from export.onnx_fallback import candidates, node_layer, node_layers, quantize_with_fallback

SCOPE = "mobilenet_v2_classifier_1/mobilenetv2_1.00_None_1"  # as tf2onnx names MobileNetV2's nodes


def test_node_layer_reads_the_keras_layer_from_tf2onnx_names():
    assert node_layer(f"{SCOPE}/expanded_conv_depthwise_1/depthwise") == "expanded_conv_depthwise"
    weight = f"{SCOPE}/block_1_project_1/convolution/merged_input:0"
    assert node_layer("Conv__1162", weight) == "block_1_project"
    assert node_layer(f"{SCOPE}/block_2_add_1/Add", "Conv__1180:0") == "block_2_add"
    assert node_layer("Conv__7", "const_fold_opt__12") is None


def test_candidates_keep_the_tflite_ranking_and_drop_layers_the_graph_lacks():
    errors = [{"layer": "a", "op": "DEPTHWISE_CONV_2D", "steps": 1.4, "tensor": "ta"},
              {"layer": "gone", "op": "MEAN", "steps": 0.9, "tensor": "tg"},
              {"layer": "b", "op": "CONV_2D", "steps": 0.5, "tensor": "tb"}]
    out = candidates(errors, {"b": ["n2", "n3"], "a": ["n1"]})
    assert [c["layer"] for c in out] == ["a", "b"]
    assert out[1] == {"layer": "b", "op": "CONV_2D", "steps": 0.5, "nodes": ["n2", "n3"]}


@pytest.fixture(scope="module")
def tiny_onnx(tiny_run, tmp_path_factory):
    """The tiny run's ONNX graph prepared for quantization, its export context and TFLite's per-op errors."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from export.config import ExportConfig
    from export.context import ExportContext
    from export.formats_tflite import _converter
    from export.run_dir import load_run

    work = tmp_path_factory.mktemp("onnx_fallback")
    with ExportContext(load_run(tiny_run), ExportConfig(run=str(tiny_run), out=str(work / "b")), work) as ctx:
        pre = work / "pre.onnx"
        quant_pre_process(str(ctx.onnx_fp32(17)), str(pre))
        cal = ctx.calibration_file(64)
        converter = _converter(str(ctx.run.file("saved_model")), "int8", str(cal))
        _, errors = fb.measure(converter, np.load(cal)[:fb.DEBUG_IMAGES])
        yield ctx, pre, errors


def test_every_convolution_tflite_ranks_is_found_in_the_onnx_graph(tiny_onnx):
    _, pre, errors = tiny_onnx
    layers = node_layers(pre)
    convs = [e["layer"] for e in errors if e["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(convs) > 10 and [c for c in convs if c not in layers] == []


def _quantized(model: bytes) -> tuple[set, set]:
    """Names of the Conv/Gemm nodes whose weights are dequantized int8, and of those with float weights."""
    import onnx

    graph = onnx.load_from_string(model).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    nodes = [n for n in graph.node if n.op_type in ("Conv", "Gemm")]
    return ({n.name for n in nodes if n.input[1] in dequantized},
            {n.name for n in nodes if n.input[1] not in dequantized})


@pytest.fixture(scope="module")
def mixed(tiny_onnx, tmp_path_factory):
    """The tiny model quantized with its worst op over the limit: ``(model bytes, record, ranked ops)``."""
    from export.config import ExportConfig, GatePolicy
    from export.formats_onnx import quantize_qdq
    from export.options import resolve_settings
    from export.registry import get_format

    ctx, pre, errors = tiny_onnx
    ranked = candidates(errors, node_layers(pre))
    if ranked[0]["steps"] - ranked[1]["steps"] < 0.02:
        pytest.skip(f"the two worst ops measured {ranked[0]['steps']} and {ranked[1]['steps']} steps: "
                    "too close for a limit between them to separate them reliably")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fb, "OP_ERROR_LIMIT", (ranked[0]["steps"] + ranked[1]["steps"]) / 2)
        settings = resolve_settings(get_format("onnx-int8"), ExportConfig())
        build = partial(quantize_qdq, pre, tmp_path_factory.mktemp("mixed") / "q.onnx",
                        ctx.calibration_images(64), settings)
        judge = fb.validation_judge(str(ctx.validation_file()), GatePolicy(), "onnx")
        model, record = quantize_with_fallback(errors, pre, build, judge)
    return model, record, ranked


def test_the_op_over_the_limit_is_left_float_and_every_other_op_is_int8(mixed):
    model, record, ranked = mixed
    assert record["float_ops"][0]["layer"] == ranked[0]["layer"]
    assert record["validation_tries"][0]["float_ops"] == 1  # judged on val by the gate's rule
    assert record["ort_disabled_optimizers"] == ["WeightBiasQuantization"]
    float_nodes = {n for op in record["float_ops"] for n in op["nodes"]}
    int8, floating = _quantized(model)
    assert floating == float_nodes & (int8 | floating) and floating
    assert len(int8) > 10


def test_the_runtime_keeps_the_float_ops_float(mixed, tiny_onnx, tmp_path):
    """ONNX Runtime's WeightBiasQuantization rewrite would quantize the float op's weights at load.

    Compared session against session on the same CPU, one thread each, so that no kernel choice
    enters: the runtime computes what a session without that rewrite computes, and a plain session
    (the rewrite on) computes something else. Measured on the tiny model with ORT 1.32 (AVX-512
    VNNI): the plain session 16 output steps (16/255) away; without the rewrite, 1 step from ORT's
    unoptimized reference.
    """
    import onnxruntime as ort

    from runtime.backends import open_backend
    from runtime.backends.onnxrt import DISABLED_OPTIMIZERS, session_options

    model, _, _ = mixed
    path = tmp_path / "mixed.onnx"
    path.write_bytes(model)
    images = tiny_onnx[0].eval_data().x_val[:16]

    def session_probs(saturating: bool | None = None, **kwargs) -> np.ndarray:
        so = session_options(path, 1, saturating)  # None: as the runtime chooses for this CPU
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"], **kwargs)
        return np.concatenate([sess.run(None, {"image": im[None].astype(np.float32)})[0] for im in images])

    with open_backend(path, backend="onnxruntime", threads=1) as engine:
        got = engine.run(images)
    np.testing.assert_allclose(got, session_probs(disabled_optimizers=list(DISABLED_OPTIMIZERS)), atol=1e-6)
    # The rewrite is real where int8 kernels are fused (every CPU but x86 without VNNI, where the
    # runtime leaves QDQ unfused): it changes the outputs.
    fused = session_probs(False, disabled_optimizers=list(DISABLED_OPTIMIZERS))
    assert np.abs(session_probs(False) - fused).max() >= 2 / 255


@pytest.mark.parametrize("machine, isa, saturates", [
    ("x86_64", ["avx2"], True),  # vpmaddubsw: 16-bit pair sums
    ("x86_64", ["avx2", "avx512f"], True),  # AVX-512 without VNNI: the same instruction, wider
    ("x86_64", ["avx2", "avx512f", "avx512_vnni"], False),
    ("x86_64", ["avx2", "avx_vnni"], False),
    ("aarch64", [], False),
])
def test_int8_kernels_saturate_on_x86_without_vnni_only(machine, isa, saturates):
    from runtime.backends.onnxrt import saturating_int8_cpu

    assert saturating_int8_cpu(machine, isa) is saturates


def test_where_int8_kernels_saturate_the_runtime_runs_qdq_models_unfused(tiny_bundle):
    """On x86 without VNNI, int8 QDQ at the basic level (unfused, exact); float models as always."""
    import onnxruntime as ort

    from runtime.backends.onnxrt import is_qdq, session_options

    int8, fp32 = tiny_bundle / "model_int8.onnx", tiny_bundle / "model_fp32.onnx"
    assert is_qdq(int8) and not is_qdq(fp32)
    basic = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    default = ort.SessionOptions().graph_optimization_level
    assert session_options(int8, 1, saturating=True).graph_optimization_level == basic
    assert session_options(int8, 1, saturating=False).graph_optimization_level == default
    assert session_options(fp32, 1, saturating=True).graph_optimization_level == default
