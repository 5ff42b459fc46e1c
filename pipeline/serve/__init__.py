"""``visdial serve``: a local web demo and JSON API over the trained G-MLE, G-DIS and D.

The top layer with ``pipeline.chat`` (whose answering pieces it reuses): may import every other
package of ``pipeline``; nothing imports it but ``stages``.
"""
