"""Evaluation: embed each unique image and caption once, then score every benchmark's official metric.

``python -m genemi.evaluation.eval_autogmentation`` / ``genemi eval``; see docs/evaluation.md.
"""
