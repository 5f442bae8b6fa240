"""Inference backends behind one protocol (base.py): ONNX Runtime and native TensorRT."""
