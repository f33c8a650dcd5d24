"""Runtimes of exported graphs: ONNX Runtime and TensorRT, and the runtimes of each model."""
