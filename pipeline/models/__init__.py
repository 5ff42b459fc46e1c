"""The models and their equations: dialog encoders, G (encoder + answer decoder), D (encoder +
answer encoder), the losses (Eq. 4, 5), the Gumbel-softmax sampler (Eq. 6), dropout,
variants by name and checkpoints.

May import the base modules of ``pipeline`` and ``pipeline.data``.
"""
