"""CUDA plumbing for the TensorRT backend (pycuda, imported lazily): the stream manager
with its four roles, per-thread context push/pop, pinned host and device buffers."""
