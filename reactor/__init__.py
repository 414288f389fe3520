"""The reactor: an epoll event loop that drives sessions through small interfaces.

``Server`` (the loop), ``ProxySession`` / ``SessionState`` / ``SocketHandler`` (what it
drives), ``Readiness``, ``Timers``, ``BufferPool``, the channel transport and metrics. It
imports nothing from ``pysozu.protocols``.
"""
