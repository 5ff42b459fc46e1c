"""Evaluation: retrieval metrics over the 100 options (MRR, R@k, mean rank, NDCG), ranking a
split with a model, the diversity of generated answers and the report.

May import base, ``data``, ``features`` and ``models``; never ``training``.
"""
