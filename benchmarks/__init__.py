"""Benchmarks of training, prediction, time to accuracy and the dashboard, against peer implementations.

Run ``python benchmarks/run.py [--quick]``; see ``benchmarks/README.md``. Not part of the test suite.
"""
