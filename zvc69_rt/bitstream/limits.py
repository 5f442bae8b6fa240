"""Bounds every reader and writer enforces, so untrusted sizes never drive allocation.

Kept in one place because docs/FORMAT.md promises them to independent implementations.
"""

from __future__ import annotations

#: Video width/height in the file header (pixels), as the spec's dimension rules.
MIN_DIMENSION = 64
MAX_DIMENSION = 8192

#: Largest frame data (``frame_size``) a reader accepts: 64 MiB per frame.
MAX_FRAME_SIZE = 64 * 1024 * 1024

#: Largest index ``entry_count``: 2**24 entries (256 MiB of index). This cap also keeps
#: the ASCII magics "ZVC1"/"ZVCT" (read as u32 > 2**24) from ever being a valid count,
#: which is how a sequential reader tells the index from a frame or the trailer.
MAX_INDEX_ENTRIES = 1 << 24

#: Latent height/width in a frame header (a latent is never larger than the video).
MAX_LATENT_DIMENSION = MAX_DIMENSION

#: Bytes read per call on a stream: memory grows only with data that really arrived.
READ_CHUNK = 1 << 20
