"""Live inference: a dialog about any image with a trained G, or G's answers to a VisDial file.

May import every other package of ``pipeline``; nothing imports it but ``stages``.
"""
