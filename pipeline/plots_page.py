"""An offline page template for ``dvc plots show``: Vega, Vega-Lite and Vega-Embed inside it.

DVC's default page loads the three libraries from a CDN, so it is blank without a network.
``dvc plots show`` takes a template (``plots.html_template``, relative to ``.dvc/``; ``visdial
plots-page`` sets it in the gitignored ``.dvc/config.local``) holding ``{plot_divs}``; DVC
replaces the placeholders by plain text substitution and adds its CDN ``<script>`` tags only
where the template holds ``{scripts}``, which ours does not. The libraries come from
``vl-convert-python``'s bundle (one script that sets ``window.vega``, ``window.vegaLite`` and
``window.vegaEmbed``), pinned to the Vega-Lite major version DVC's plot specs use (v5).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.atomic import atomic_path
from pipeline.errors import InputError

VEGA_LITE = "v5.20"  # DVC 3.x writes Vega-Lite v5 specs (dvc_render.vega_templates)
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>DVC plots (offline)</title>
    <script>
/* vega, vega-lite {vega_lite} and vega-embed, bundled by vl-convert-python */
{bundle}
    </script>
    <style>
        body { font-family: sans-serif; }
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def offline_template(bundle: str) -> str:
    """The page around the JavaScript ``bundle``; the bundle must not hold a DVC placeholder."""
    found = [p for p in PLACEHOLDERS if p in bundle]
    if found:
        raise InputError(f"the JavaScript bundle holds DVC's placeholder {found[0]}")
    return PAGE.replace("{vega_lite}", VEGA_LITE).replace("{bundle}", bundle)  # bundle last


def write_offline_template(path: str | Path) -> Path:
    """Write the template to ``path`` (atomically) and return it."""
    try:
        import vl_convert
    except ImportError:
        raise InputError("vl-convert-python is missing: run `bash scripts/setup`") from None
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(offline_template(vl_convert.javascript_bundle(vl_version=VEGA_LITE)))
    return path
