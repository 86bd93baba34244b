"""Fake payment rails for tests: real HTTP servers on 127.0.0.1 that speak each rail's documented protocol.

Test fixtures only: the site never imports them.
"""
