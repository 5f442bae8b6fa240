"""Exception types every layer raises, so callers catch one family per failure kind."""

from __future__ import annotations


class ZVC69Error(Exception):
    """Base class of every error the codec raises on purpose."""


class ZVC69FormatError(ZVC69Error, ValueError):
    """A bitstream (container, frame, or entropy payload) is malformed.

    Messages name the frame and field at fault, e.g. ``frame 12: frame_size 9000
    exceeds the 812 bytes left in the file``.
    """


class EntropyDecodeError(ZVC69FormatError):
    """An entropy payload (ZVCP or legacy) is truncated, corrupt or mismatched."""


class ModelMismatchError(ZVC69Error):
    """The stream was encoded with a different model bundle than the decoder has."""


class InputError(ZVC69Error, ValueError):
    """User input (frame size, file, option) is unusable; the message says what to do."""


class NotAvailableError(ZVC69Error):
    """A feature or backend is not built or not installed here (CLI exit code 2)."""
