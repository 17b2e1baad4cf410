"""Export stage: a training run -> a gated, self-describing bundle of TFLite and ONNX artifacts.

Python API: ``export.pipeline.export(ExportConfig(run="runs/latest"))``; CLI: ``python -m export``.
Heavy converters (TensorFlow, tf2onnx, onnxruntime.quantization, matplotlib) are imported only
inside the functions that use them.
"""
