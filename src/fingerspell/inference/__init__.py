"""Inference: image loading and normalisation, the ONNX predictor, the predict CLI.

Imports no torch, Lightning or MLflow at import time, so it starts fast and serves from a
small install.
"""
