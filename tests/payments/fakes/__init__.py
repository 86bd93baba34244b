"""Fake payment rails for tests: real HTTP servers on 127.0.0.1 speaking each rail's documented protocol."""
