"""pysozu: reverse proxies that are reconfigured while they run.

The Python counterpart of Sōzu's proxy library. A ``Worker`` runs one event loop (the
reactor) with its listeners and sessions, and is steered through a command channel: each
request (add a cluster, a backend, a listener...) carries an id that its answer repeats,
and open connections survive every change.

Layers (imports go downwards only)::

    pysozu            Worker, ConfigState, configuration file, command line
    pysozu.protocols  pipe, PROXY protocol, TCP proxy, backends and load balancing
    pysozu.parser     HTTP parsing (pure; optional native scanner in pysozu.native)
    pysozu.reactor    epoll loop, sessions, timers, buffer pool, channel transport
"""

from __future__ import annotations

# before anything else of the package is imported: the compiled build of the hot modules,
# when one was made and matches the sources (see pysozu.compiled)
try:
    from pysozu import compiled as _compiled
except ImportError:  # pragma: no cover - a broken installation: pure Python throughout
    pass
else:
    _compiled.install()

__version__ = "0.1.0"

__all__ = ["__version__"]
