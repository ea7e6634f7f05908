"""The sample dataset's sign vocabulary: each gloss is a distinct, repeatable motion of the hands.

A gloss maps time t in [0, 1] to both wrists (in signer units: shoulder half-widths, relative to the
neck, y down), palm directions (radians), finger curls (5 values in [0, 1]) and mouth opening. Distinct
trajectories and handshapes per gloss are what make the sample learnable: a sentence's text names its
glosses, so a model that reads hand motion can retrieve it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

OPEN = np.zeros(5)
POINT = np.array([0.9, 0.0, 0.95, 0.95, 0.95])
VEE = np.array([0.9, 0.0, 0.0, 0.95, 0.95])
CLAW = np.ones(5) * 0.5
BUNCH = np.ones(5) * 0.7
WHAND = np.array([0.9, 0.0, 0.0, 0.0, 0.95])
HOOK = np.array([0.9, 0.6, 0.95, 0.95, 0.95])

REST_RIGHT = np.array([-0.7, 2.0])
REST_LEFT = np.array([0.7, 2.0])
UP = -np.pi / 2


@dataclass(frozen=True)
class Pose:
    right: np.ndarray
    left: np.ndarray
    right_dir: float
    left_dir: float
    right_curl: np.ndarray
    left_curl: np.ndarray
    mouth: float = 0.0


def _osc(t: float, cycles: float) -> float:
    return float(np.sin(2 * np.pi * cycles * t))


def hello(t):
    return Pose(np.array([-1.2 + 0.35 * _osc(t, 2), -1.2]), REST_LEFT, UP, UP, OPEN, CLAW * 0.3, 0.3)


def you(t):
    return Pose(np.array([-0.3 - 0.9 * t, 0.6 - 0.2 * t]), REST_LEFT, -np.pi * 0.9, UP, POINT, CLAW * 0.3)


def name(t):
    tap = 0.15 * abs(_osc(t, 2))
    return Pose(np.array([-0.1, 0.7 - tap]), np.array([0.3, 0.8]), 0.0, np.pi, VEE, VEE)


def what(t):
    dx = 0.25 * _osc(t, 2.5)
    return Pose(np.array([-0.9 + dx, 1.1]), np.array([0.9 + dx, 1.1]), UP, UP, OPEN, OPEN, 0.6)


def good(t):
    return Pose(np.array([-0.2 - 0.4 * t, -0.6 + 1.2 * t]), REST_LEFT, UP, UP, OPEN, CLAW * 0.3, 0.2)


def morning(t):
    a = np.pi * (1.0 - t)
    return Pose(np.array([-0.3 + 0.9 * np.cos(a), 0.6 - 1.4 * np.sin(a)]), np.array([0.5, 1.0]), UP, np.pi, OPEN, OPEN)


def thanks(t):
    return Pose(
        np.array([-0.1 - 0.5 * t, -0.5 + 0.9 * t]), REST_LEFT, UP + 0.6 * t, UP, OPEN, CLAW * 0.3, 0.4 * (1 - t)
    )


def house(t):
    spread = 0.9 * min(1.0, 2 * t)
    drop = max(0.0, 2 * t - 1.0)
    return Pose(
        np.array([-0.1 - spread, -0.4 + 0.5 * spread + 0.8 * drop]),
        np.array([0.1 + spread, -0.4 + 0.5 * spread + 0.8 * drop]),
        -np.pi * 0.25,
        -np.pi * 0.75,
        OPEN,
        OPEN,
    )


def rain(t):
    y = -0.6 + 1.0 * ((3 * t) % 1.0)
    return Pose(np.array([-0.7, y]), np.array([0.7, y]), np.pi / 2, np.pi / 2, CLAW, CLAW)


def sun(t):
    a = 2 * np.pi * t
    return Pose(np.array([-0.6 + 0.45 * np.cos(a), -1.7 + 0.45 * np.sin(a)]), REST_LEFT, UP, UP, POINT, CLAW * 0.3)


def water(t):
    tap = 0.2 * abs(_osc(t, 2))
    return Pose(np.array([-0.15, -0.55 + tap]), REST_LEFT, UP, UP, WHAND, CLAW * 0.3, 0.3)


def book(t):
    return Pose(
        np.array([-0.15 - 0.5 * t, 0.7]), np.array([0.15 + 0.5 * t, 0.7]), UP - 1.2 * t, UP + 1.2 * t, OPEN, OPEN
    )


def eat(t):
    tap = 0.3 * abs(_osc(t, 2))
    return Pose(np.array([-0.2, -0.6 + tap]), REST_LEFT, UP, UP, BUNCH, CLAW * 0.3, 0.8 * abs(_osc(t, 2)))


def walk(t):
    a = _osc(t, 2)
    return Pose(np.array([-0.5, 1.0 + 0.3 * a]), np.array([0.5, 1.0 - 0.3 * a]), -np.pi, 0.0, OPEN, OPEN)


def friend(t):
    a = 2 * np.pi * t
    return Pose(
        np.array([-0.15 + 0.2 * np.cos(a), 0.6 + 0.2 * np.sin(a)]),
        np.array([0.15 - 0.2 * np.cos(a), 0.6 - 0.2 * np.sin(a)]),
        0.0,
        np.pi,
        HOOK,
        HOOK,
    )


def happy(t):
    a = 2 * np.pi * 2 * t
    return Pose(np.array([-0.2 + 0.25 * np.cos(a), 0.5 + 0.25 * np.sin(a)]), REST_LEFT, 0.0, UP, OPEN, CLAW * 0.3, 0.5)


GLOSSES: dict[str, tuple[str, Callable[[float], Pose]]] = {
    "HELLO": ("hello", hello),
    "YOU": ("you", you),
    "NAME": ("name", name),
    "WHAT": ("what", what),
    "GOOD": ("good", good),
    "MORNING": ("morning", morning),
    "THANK-YOU": ("thank you", thanks),
    "HOUSE": ("house", house),
    "RAIN": ("rain", rain),
    "SUN": ("sun", sun),
    "WATER": ("water", water),
    "BOOK": ("book", book),
    "EAT": ("eat", eat),
    "WALK": ("walk", walk),
    "FRIEND": ("friend", friend),
    "HAPPY": ("happy", happy),
}


def rest_pose() -> Pose:
    return Pose(REST_RIGHT, REST_LEFT, UP, UP, CLAW * 0.3, CLAW * 0.3)


def blend(a: Pose, b: Pose, w: float) -> Pose:
    """Linear transition between two poses (w = 0 -> a, 1 -> b)."""
    mix = lambda x, y: (1 - w) * x + w * y  # noqa: E731
    return Pose(
        mix(a.right, b.right),
        mix(a.left, b.left),
        mix(a.right_dir, b.right_dir),
        mix(a.left_dir, b.left_dir),
        mix(a.right_curl, b.right_curl),
        mix(a.left_curl, b.left_curl),
        mix(a.mouth, b.mouth),
    )
