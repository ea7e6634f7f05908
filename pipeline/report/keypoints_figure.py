"""A figure of selected keypoints like the SEDS paper's Figure 1: points and skeleton links, coloured
by part (body, left hand, right hand, face, mouth), drawn on a video frame; for the `seds`
normalisation, side panels show what the model is fed (body on the 256 frame, each hand in its box,
the left one mirrored).

Joints whose mask bit is 0 (low score, no hand box, clipped) are drawn as small hollow grey rings at
their pixel position, so a figure shows what was left out rather than hiding it (points at exactly
(0, 0) carry no position and are left out). Images are RGB uint8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.keypoints.layout import Selection

PART_COLOURS: dict[str, tuple[int, int, int]] = {  # RGB
    "body": (40, 110, 240),
    "left_hand": (30, 170, 70),
    "right_hand": (230, 50, 40),
    "face": (245, 175, 0),
    "mouth": (180, 60, 200),
}
PART_LABELS = {"body": "body", "left_hand": "left hand", "right_hand": "right hand", "face": "face", "mouth": "mouth"}
MASKED_COLOUR = (150, 150, 150)
PANEL_BACKGROUND = (250, 250, 250)


def _sizes(height: int, width: int) -> tuple[int, int]:
    """Point radius and line thickness (px) that read at this image size."""
    short = min(height, width)
    return max(2, round(short / 160)), max(1, round(short / 300))


def _point(xy: np.ndarray) -> tuple[int, int]:
    return int(round(float(xy[0]))), int(round(float(xy[1])))


def upscale(image: np.ndarray, xy: np.ndarray, min_height: int) -> tuple[np.ndarray, np.ndarray]:
    """Small frames (the sample is 320x240) enlarged by a whole factor so points and labels stay legible;
    the points' pixel coordinates scaled with them."""
    import cv2

    factor = -(-min_height // image.shape[0])
    if factor <= 1:
        return image, xy
    size = (image.shape[1] * factor, image.shape[0] * factor)
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), (xy + 0.5) * factor - 0.5


def draw_points(
    image: np.ndarray, xy: np.ndarray, mask: np.ndarray, chosen: Selection, show: np.ndarray | None = None
) -> np.ndarray:
    """A copy of `image` (H, W, 3) RGB uint8 with the selection's points `xy` (K, 2) px drawn: links
    between confident joints in their part's colour, confident joints as filled dots, masked joints
    (mask 0) as hollow grey rings; points at exactly (0, 0), the "no coordinate" of COCO annotations and of
    the seds zeroing, are not drawn. `show` (K,) bool limits which columns are drawn."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    radius, thickness = _sizes(*out.shape[:2])
    finite = np.all(np.isfinite(xy), axis=1) & np.any(xy != 0, axis=1)  # (0, 0): no coordinate at all
    if show is not None:
        finite &= show
    on = (mask > 0) & finite
    for a, b, part in chosen.links():
        if on[a] and on[b]:
            cv2.line(out, _point(xy[a]), _point(xy[b]), PART_COLOURS[part], thickness, cv2.LINE_AA)
    part_at = chosen.part_of_column()
    for k in np.flatnonzero(finite & ~on):
        cv2.circle(out, _point(xy[k]), radius, MASKED_COLOUR, 1, cv2.LINE_AA)
    for k in np.flatnonzero(on):
        r = radius if part_at[k] == "body" else max(1, radius - 1)
        cv2.circle(out, _point(xy[k]), r, PART_COLOURS[part_at[k]], -1, cv2.LINE_AA)
    return out


def draw_legend(image: np.ndarray, parts: tuple[str, ...], title: str | None = None) -> np.ndarray:
    """A legend of the parts' colours (and an optional title line) in the top-left corner, in place."""
    import cv2

    scale = max(0.35, min(image.shape[:2]) / 900)
    line = int(22 * scale / 0.6)
    rows = ([title] if title else []) + [PART_LABELS[p] for p in parts]
    width = int(max(cv2.getTextSize(r, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for r in rows)) + line + 8
    overlay = image.copy()
    cv2.rectangle(overlay, (0, 0), (width, line * len(rows) + 6), (255, 255, 255), -1)
    cv2.addWeighted(overlay, 0.75, image, 0.25, 0, dst=image)
    y = line
    if title:
        cv2.putText(image, title, (4, y - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
        y += line
    for part in parts:
        cv2.circle(image, (4 + line // 3, y - line // 3), max(2, line // 4), PART_COLOURS[part], -1, cv2.LINE_AA)
        cv2.putText(
            image, PART_LABELS[part], (4 + line, y - 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA
        )
        y += line
    return image


def seds_panels(xy: np.ndarray, mask: np.ndarray, chosen: Selection, crop: int, side: int) -> list[np.ndarray]:
    """Square panels (side x side px) of `seds`-normalised points (K, 2) in crop px: one with the body
    (and face) on the crop frame, one per selected hand in its own box (masked joints as grey rings)."""
    import cv2

    panels = []
    groups = [
        (("body", "face", "mouth"), f"body, {crop} frame"),
        (("left_hand",), "left hand box, mirrored"),
        (("right_hand",), "right hand box"),
    ]
    for parts, title in groups:
        present = [p for p in parts if p in chosen.parts]
        if not present:
            continue
        panel = np.empty((side, side, 3), np.uint8)
        panel[...] = PANEL_BACKGROUND
        show = np.zeros(chosen.size, dtype=bool)
        for part in present:
            show[chosen.columns(part)] = True
        panel = draw_points(panel, xy * (side / crop), mask, chosen, show)
        cv2.rectangle(panel, (0, 0), (side - 1, side - 1), (200, 200, 200), 1)
        scale = max(0.35, side / 700)
        cv2.putText(panel, title, (6, side - 8), cv2.FONT_HERSHEY_SIMPLEX, scale, (60, 60, 60), 1, cv2.LINE_AA)
        panels.append(panel)
    return panels


def compose(main: np.ndarray, panels: list[np.ndarray]) -> np.ndarray:
    """The frame with its panels to the right (each panel as tall as the frame)."""
    return np.concatenate([main, *panels], axis=1) if panels else main


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write an RGB uint8 image as PNG (creating the folder); raises OSError naming the path on failure."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path} (is the folder writable and the name a .png?)")
    return path
