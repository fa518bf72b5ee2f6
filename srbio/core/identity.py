"""Identity of pixel data: a digest that tells whether two arrays hold the same image."""

from __future__ import annotations

import hashlib

import numpy as np


def pixel_digest(image: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and pixels (C order): equal iff the images are.

    Used to check that a stage's input is the image an earlier stage recorded (e.g. the HR
    that ``crop`` reads is the one ``register`` registered), whatever its path.
    """
    a = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(a.data)
    return h.hexdigest()
