"""ONNX export: wrap the trained net (raw pixels in, probabilities out), check parity, quantise to int8."""
