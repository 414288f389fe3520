"""Protocol state machines and proxies built on the reactor: the pipe, the PROXY protocol,
the TCP proxy, backends and load balancing."""
