"""Strict test doubles: a synthetic staged encoder and fake `tensorrt` / `pycuda` modules
implementing exactly the API subset the runtime calls (any other attribute raises)."""
