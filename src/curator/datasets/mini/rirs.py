"""Room impulse responses from pyroomacoustics' image-source model (shoebox rooms)."""

from __future__ import annotations

import numpy as np

MIN_WALL_DISTANCE_M = 0.5
"""Source and microphone keep this far from every wall."""
ROOM_HEIGHT_M = (2.5, 4.0)


def shoebox_rir(sr: int, rt60: float, size_range: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """One RIR of a random shoebox room with the given RT60; peak-normalised to 1."""
    import pyroomacoustics as pra

    dims = np.array([rng.uniform(*size_range), rng.uniform(*size_range), rng.uniform(*ROOM_HEIGHT_M)])
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(absorption), max_order=max_order)
    lo, hi = MIN_WALL_DISTANCE_M, dims - MIN_WALL_DISTANCE_M
    room.add_source(rng.uniform(lo, hi))
    room.add_microphone(rng.uniform(lo, hi))
    room.compute_rir()
    h = np.asarray(room.rir[0][0], dtype=np.float64)
    return (h / np.max(np.abs(h))).astype(np.float32)
