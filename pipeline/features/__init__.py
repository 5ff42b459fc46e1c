"""Image features: the VGG-19 backbone and its weights, image preprocessing, the resumable,
distributed extraction of pool5 features to HDF5.

May import the base modules of ``pipeline`` only (reading the output: ``pipeline.data``).
"""
