"""HTTP/1.1 parsing (pure: bytes in, events and spans out; no sockets, clock or logging).

This subpackage is filled by the HTTP/1.1 issue; the TCP proxy does not parse anything.
"""
