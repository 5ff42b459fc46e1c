"""Training: the shared loop (epochs, resume, DDP, the log), pretraining of G and D, and the
knowledge transfer D -> G (G-DIS) with the adversarial variants of Table 4.

May import base, ``data``, ``features``, ``models`` and ``evaluation`` (per-epoch validation).
"""
