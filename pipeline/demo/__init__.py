"""The demo dataset: procedurally generated, image-grounded visual dialogs in VisDial v0.9 format
(scenes, their drawing, the dialog language, the writer of the files).

May import the base modules of ``pipeline`` and ``pipeline.data`` (VisDial's format constants).
"""
