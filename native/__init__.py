"""The optional cffi-compiled SIMD header scanner used by ``pysozu.parser``.

Filled by the HTTP/1.1 parser issue; nothing imports it yet.
"""
