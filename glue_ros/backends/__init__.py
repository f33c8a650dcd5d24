"""Inference backends for exported networks: ONNX export, ONNX Runtime, TensorRT."""
