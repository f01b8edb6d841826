"""Engines offgrid can start itself: the embedded default used by `offgrid demo` and tests."""
