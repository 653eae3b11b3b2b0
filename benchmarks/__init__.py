"""Benchmark suites behind `tft bench`, and their checked-in reports (results/).

The engine and the server never import this package."""
