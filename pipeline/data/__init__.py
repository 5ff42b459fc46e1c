"""Data: VisDial readers, tokenizer, vocabulary, ``prepare``, batches, datasets and loaders.

May import the base modules of ``pipeline`` only. ``feature_reader`` reads the features stage's
output (its writer is ``pipeline.features``, which this package never imports).
"""
