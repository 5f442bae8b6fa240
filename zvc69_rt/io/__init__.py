"""Video in and out: Y4M, raw YUV420P, PyAV containers; YUV<->RGB; padding to the network alignment.

Import the concrete modules (``zvc69_rt.io.y4m``, ``.raw``, ``.pyav_source``, ``.color``,
``.padding``, ``.open``); this package imports nothing heavy on its own.
"""
