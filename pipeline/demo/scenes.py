"""Scenes of the demo dataset: a few flat 2-D shapes on a plain background, and their drawing.

A scene is 2 or 3 objects, each in its own quarter of the image (a 2x2 grid, so positions have
names: "top left", ..., "bottom right"), each of its own colour (so "the red one" names one
object; shapes may repeat), "big" (40% of the image side) or "small" (28%). At 224 px that is
90 or 63 px: two to three cells of a 7x7 pool5 map each way, so an object fills 8-16% of the
map, and the colours are far apart in RGB, so even features of a randomly initialised VGG carry
them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 145, 30),
    "yellow": (240, 215, 40),
    "green": (50, 170, 70),
    "blue": (45, 90, 225),
    "purple": (145, 60, 190),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (240, 240, 240),
    "gray": (128, 128, 128),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle", "diamond")
SIZES = ("big", "small")
SIDE = {"big": 0.40, "small": 0.28}  # object side as a fraction of the image side
GRID = 2  # cells per row and column; cell = (row, col), row 0 = top, col 0 = left
COLOUR_JITTER = 12  # +- per RGB channel, so a colour is a cluster, not one value
MIN_OBJECTS, MAX_OBJECTS = 2, 3


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    row: int
    col: int
    cx: float  # centre, as a fraction of the image side
    cy: float
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class Scene:
    image_id: int
    background: str
    objects: tuple[SceneObject, ...]


def sample_scene(rng: random.Random, image_id: int) -> Scene:
    """Draw a random scene: distinct cells, distinct colours, any shapes, jittered centres."""
    n = rng.randint(MIN_OBJECTS, MAX_OBJECTS)
    cells = rng.sample(range(GRID * GRID), n)
    kinds = [(c, rng.choice(SHAPES)) for c in rng.sample(sorted(COLOURS), n)]
    cell_side = 1.0 / GRID
    objects = []
    for cell, (colour, shape) in zip(cells, kinds, strict=True):
        row, col = divmod(cell, GRID)
        size = rng.choice(SIZES)
        slack = 0.45 * (cell_side - SIDE[size])  # keeps every object inside its own cell
        cx = (col + 0.5) * cell_side + rng.uniform(-slack, slack)
        cy = (row + 0.5) * cell_side + rng.uniform(-slack, slack)
        base = COLOURS[colour]
        rgb = tuple(min(255, max(0, v + rng.randint(-COLOUR_JITTER, COLOUR_JITTER))) for v in base)
        objects.append(SceneObject(shape, colour, size, row, col, cx, cy, rgb))
    return Scene(image_id, rng.choice(sorted(BACKGROUNDS)), tuple(objects))


def draw_scene(scene: Scene, image_size: int) -> Image.Image:
    """Render ``scene`` as an RGB image of ``image_size`` x ``image_size`` pixels."""
    image = Image.new("RGB", (image_size, image_size), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        half = SIDE[obj.size] * image_size / 2
        x, y = obj.cx * image_size, obj.cy * image_size
        if obj.shape == "circle":
            draw.ellipse([x - half, y - half, x + half, y + half], fill=obj.rgb)
        elif obj.shape == "square":
            draw.rectangle([x - half, y - half, x + half, y + half], fill=obj.rgb)
        elif obj.shape == "triangle":
            draw.polygon([(x, y - half), (x + half, y + half), (x - half, y + half)], fill=obj.rgb)
        elif obj.shape == "diamond":
            draw.polygon([(x, y - half), (x + half, y), (x, y + half), (x - half, y)], fill=obj.rgb)
        else:  # pragma: no cover - SHAPES is closed
            raise ValueError(obj.shape)
    return image


def nearest_colour(rgb: tuple[int, ...]) -> str:
    """The palette colour (object or background) closest to ``rgb``; used to check grounding."""
    palette = {**COLOURS, **BACKGROUNDS}
    rgb = tuple(rgb[:3])
    return min(
        palette, key=lambda k: sum((a - b) ** 2 for a, b in zip(palette[k], rgb, strict=True))
    )
