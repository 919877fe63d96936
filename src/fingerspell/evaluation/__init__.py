"""Evaluation of an exported model with onnxruntime: metrics, speed, robustness, plots."""
