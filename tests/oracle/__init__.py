"""Brute-force reference implementation of the feature semantics in docs/features.md.

It shares no code with `udfs/features/`: it recomputes every record from scratch from the
accepted events, so the end-to-end tests can compare the production jobs against it.
"""
