"""Procedural, band-limited textures for toytown's surfaces.

Every texture is a smooth deterministic function of surface coordinates (metres) and a seed:
hash-based value noise summed over octaves, stripes, tile and window grids. Each function takes
a *footprint* ``fw`` (metres covered by one image pixel at the hit point, per sample [N]) and
pre-filters itself to it: noise octaves whose wavelength is below ~4 footprints fade out and
edges are box-filtered steps of width ``fw``. Far or grazing surfaces therefore turn smooth
instead of aliasing, which keeps the rendered images reproducible by one-Gaussian-per-pixel
splatting while near surfaces keep their detail.

All colours are float32 RGB in [0, 1] (display values), arrays [N, 3].
"""

from __future__ import annotations

import numpy as np

_F = np.float32


def hash01(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Uniform pseudo-random values in [0, 1) [N] float32 for integer lattice points (ix, iy)."""
    h = ix.astype(np.int64).astype(np.uint32) * np.uint32(0x9E3779B1)
    h ^= iy.astype(np.int64).astype(np.uint32) * np.uint32(0x85EBCA77)
    h ^= np.uint32((seed * 0xC2B2AE3D + 0x27D4EB2F) & 0xFFFFFFFF)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(_F) * _F(1.0 / 16777216.0)


def value_noise(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1] [N] with unit lattice spacing (C1-continuous). Finite
    float64 inputs go through :mod:`p4dsim.toytown.kernels` (compiled, identical values)."""
    from p4dsim.toytown.kernels import value_noise_fast

    fast = value_noise_fast(x, y, seed)
    if fast is not None:
        return fast
    xf = np.floor(x)
    yf = np.floor(y)
    fx = (x - xf).astype(_F)
    fy = (y - yf).astype(_F)
    ix = xf.astype(np.int64)
    iy = yf.astype(np.int64)
    sx = fx * fx * (_F(3.0) - _F(2.0) * fx)
    sy = fy * fy * (_F(3.0) - _F(2.0) * fy)
    a = hash01(ix, iy, seed)
    b = hash01(ix + 1, iy, seed)
    c = hash01(ix, iy + 1, seed)
    d = hash01(ix + 1, iy + 1, seed)
    top = a + (b - a) * sx
    bot = c + (d - c) * sx
    return top + (bot - top) * sy


def octave_weight(wavelength: float, fw: np.ndarray) -> np.ndarray:
    """Fade [N] of a feature of ``wavelength`` metres at footprint ``fw``: 1 when the wavelength
    spans ≥ 4 footprints, 0 at ≤ 2 footprints, linear in between."""
    return np.clip(wavelength / (2.0 * np.maximum(fw, 1e-6)) - 1.0, 0.0, 1.0).astype(_F)


def fbm(
    x: np.ndarray,
    y: np.ndarray,
    seed: int,
    wavelength: float,
    octaves: int,
    fw: np.ndarray,
    gain: float = 0.5,
) -> np.ndarray:
    """Fractal value noise [N], mean ≈ 0, roughly in [-0.5, 0.5].

    The first octave has ``wavelength`` metres; each next one half of that with ``gain`` times
    the amplitude. Octaves too fine for the footprint ``fw`` fade out (see :func:`octave_weight`).
    """
    out = np.zeros(np.shape(x), dtype=_F)
    amp = 1.0
    norm = 0.0
    lam = float(wavelength)
    for k in range(octaves):
        w = octave_weight(lam, fw)
        if np.any(w > 0):
            n = value_noise(x / lam + 17.31 * k, y / lam - 9.17 * k, seed * 101 + k)
            out += _F(amp) * w * (n - _F(0.5))
        norm += amp
        amp *= gain
        lam *= 0.5
    return out / _F(norm) * _F(2.0)


def soft_step(x: np.ndarray, fw: np.ndarray) -> np.ndarray:
    """A step at 0 (0 below, 1 above) box-filtered over width ``fw`` [N]."""
    return np.clip(x / np.maximum(fw, 1e-6) + 0.5, 0.0, 1.0).astype(_F)


def soft_band(
    x: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray, fw: np.ndarray
) -> np.ndarray:
    """Coverage [N] in [0, 1] of the band lo < x < hi, box-filtered over width ``fw``; bands
    narrower than the footprint lose contrast in proportion."""
    fw = np.maximum(fw, 1e-6)
    width = np.asarray(hi, dtype=np.float64) - np.asarray(lo, dtype=np.float64)
    inside = np.minimum(x - lo, hi - x)
    cov = np.clip(inside / fw + 0.5, 0.0, 1.0) * np.clip(width / fw, 0.0, 1.0)
    return cov.astype(_F)


def periodic_band(x: np.ndarray, period: float, lo: float, hi: float, fw: np.ndarray) -> np.ndarray:
    """Coverage [N] of the bands lo < (x mod period) < hi, repeated with ``period``; fades to its
    mean duty cycle once the footprint approaches the period."""
    m = np.mod(x, period)
    cov = np.maximum(soft_band(m, lo, hi, fw), soft_band(m - period, lo, hi, fw))
    cov = np.maximum(cov, soft_band(m + period, lo, hi, fw))
    fade = octave_weight(period, fw)
    duty = (hi - lo) / period
    return (fade * cov + (1.0 - fade) * duty).astype(_F)


def mix(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-sample blend of colours a, b [N, 3] (or [3]) with weight w [N] towards b."""
    w = np.asarray(w, dtype=_F)[..., None]
    return (a * (_F(1.0) - w) + b * w).astype(_F)


# --------------------------------------------------------------------------- materials


def asphalt(x: np.ndarray, y: np.ndarray, fw: np.ndarray, seed: int) -> np.ndarray:
    """Road surface [N, 3]: grey asphalt with multi-scale noise and darker patches."""
    fine = fbm(x, y, seed + 1, 2.0, 6, fw)
    patches = fbm(x, y * 1.5, seed + 2, 14.0, 2, fw)
    g = 0.34 + 0.16 * fine + 0.10 * patches
    col = np.stack([g * 1.0, g * 0.99, g * 0.96], axis=-1)
    return col.astype(_F)


def road_markings(
    x: np.ndarray,
    y: np.ndarray,
    fwx: np.ndarray,
    fwy: np.ndarray,
    lines: list[tuple[float, float, bool]],
    dash_period: float,
    dash_length: float,
) -> np.ndarray:
    """Paint coverage [N] in [0, 1] of lane lines: ``lines`` holds (centre y, width, dashed)."""
    cov = np.zeros(np.shape(x), dtype=_F)
    for yc, width, dashed in lines:
        c = soft_band(y, yc - width / 2, yc + width / 2, fwy)
        if dashed:
            c = c * periodic_band(x, dash_period, 0.0, dash_length, fwx)
        cov = np.maximum(cov, c)
    return cov


def sidewalk_tiles(x: np.ndarray, y: np.ndarray, fw: np.ndarray, seed: int) -> np.ndarray:
    """Concrete tiles of 0.6 m with grout lines and per-tile tint [N, 3]."""
    size = 0.6
    tx = np.floor(x / size)
    ty = np.floor(y / size)
    tint = (hash01(tx.astype(np.int64), ty.astype(np.int64), seed + 7) - 0.5) * 0.12
    tint = tint * octave_weight(size, fw)
    grout = np.maximum(
        periodic_band(x, size, -0.015, 0.015, fw), periodic_band(y, size, -0.015, 0.015, fw)
    )
    g = 0.62 + tint + 0.08 * fbm(x, y, seed + 8, 1.0, 4, fw)
    base = np.stack([g * 1.02, g, g * 0.95], axis=-1)
    return mix(base, np.array([0.38, 0.37, 0.35], _F), grout * 0.8)


def kerb_stone(x: np.ndarray, z: np.ndarray, fw: np.ndarray, seed: int) -> np.ndarray:
    """Kerb stones [N, 3]: light concrete blocks of 1 m with joints."""
    g = 0.68 + 0.08 * fbm(x, z * 3.0, seed + 11, 0.8, 3, fw)
    joint = periodic_band(x, 1.0, -0.01, 0.01, fw)
    base = np.stack([g, g, g * 0.97], axis=-1)
    return mix(base, np.array([0.35, 0.35, 0.35], _F), joint * 0.7)


def lawn(x: np.ndarray, y: np.ndarray, fw: np.ndarray, seed: int) -> np.ndarray:
    """Grass and soil [N, 3]."""
    n = fbm(x, y, seed + 21, 3.0, 5, fw)
    soil = np.clip(fbm(x, y, seed + 22, 9.0, 2, fw) * 2.0 + 0.2, 0.0, 1.0)
    grass = np.stack([0.24 + 0.10 * n, 0.42 + 0.16 * n, 0.16 + 0.06 * n], axis=-1)
    dirt = np.stack([0.45 + 0.1 * n, 0.38 + 0.08 * n, 0.28 + 0.06 * n], axis=-1)
    return mix(grass.astype(_F), dirt.astype(_F), soil * 0.6)


def facade(
    u: np.ndarray,
    z: np.ndarray,
    fw: np.ndarray,
    base: np.ndarray,
    style: np.ndarray,
    height: np.ndarray,
    offset: np.ndarray,
    seed: int,
) -> np.ndarray:
    """Building wall [N, 3] at facade coordinates u (horizontal, m) and z (height, m).

    base: [N, 3] wall colour; style: [N] 0 plaster, 1 brick; height: [N] building height;
    offset: [N] per-building shift of the patterns (m); seed: world seed. Window grid of
    3.2 m floors, shop windows on the ground floor, a cornice band under the roof line.
    """
    s0 = int(seed)
    u2 = u + offset
    plaster = base * (1.0 + 0.25 * fbm(u2, z, s0 + 31, 3.0, 5, fw))[:, None]
    # bricks: 0.42 x 0.14 m in running bond, per-brick tint, mortar lines
    row = np.floor(z / 0.14)
    shift = np.mod(row, 2.0) * 0.21
    col = np.floor((u2 + shift) / 0.42)
    tint = (hash01(col.astype(np.int64), row.astype(np.int64), s0 + 33) - 0.5) * 0.25
    tint = tint * octave_weight(0.28, fw)
    mortar = np.maximum(
        periodic_band(z, 0.14, -0.012, 0.012, fw),
        periodic_band(u2 + shift, 0.42, -0.012, 0.012, fw),
    )
    brick = base * (1.0 + tint + 0.15 * fbm(u2, z, s0 + 34, 1.5, 4, fw))[:, None]
    brick = mix(brick, np.array([0.72, 0.70, 0.66], _F), mortar * 0.85)
    wall = np.where((style == 1)[:, None], brick, plaster).astype(_F)

    # windows: 1.3 m wide every 2.9 m; upper floors from z = 4.0 every 3.2 m, 1.6 m tall
    floor_h = 3.2
    in_col = periodic_band(u2, 2.9, 0.8, 2.1, fw)
    zr = z - 4.0
    in_row = periodic_band(zr, floor_h, 0.7, 2.3, fw) * soft_step(zr, fw)
    in_row = in_row * soft_step(height - 1.2 - z, fw)
    win = in_col * in_row
    shop = periodic_band(u2, 5.8, 0.6, 4.6, fw) * soft_band(z, 0.6, 3.0, fw)
    win = np.maximum(win, shop)
    frame_col = periodic_band(u2, 2.9, 0.68, 2.22, fw) * periodic_band(zr, floor_h, 0.58, 2.42, fw)
    frame_col = frame_col * soft_step(zr + 0.1, fw) * soft_step(height - 1.1 - z, fw)
    # glass reflects a vertical gradient of sky and some blotchy reflections
    refl = 0.5 + fbm(u2, z, s0 + 35, 4.0, 3, fw)
    gz = np.mod(z - 4.0, floor_h) / floor_h
    glass = np.stack(
        [
            0.10 + 0.10 * refl + 0.06 * gz,
            0.13 + 0.11 * refl + 0.07 * gz,
            0.18 + 0.14 * refl + 0.1 * gz,
        ],
        axis=-1,
    ).astype(_F)
    wall = mix(wall, np.array([0.85, 0.84, 0.80], _F), np.clip(frame_col - win, 0.0, 1.0))
    wall = mix(wall, glass, win)
    cornice = soft_band(z, height - 0.6, height + 1.0, fw)
    wall = mix(wall, base * 0.55, cornice)
    return np.clip(wall, 0.0, 1.0).astype(_F)


def metal_pole(z: np.ndarray, fw: np.ndarray, seed: int) -> np.ndarray:
    """Painted pole [N, 3]: dark green-grey with vertical variation and a base band."""
    n = fbm(z * 0.0, z, seed + 41, 1.5, 4, fw)
    g = 0.30 + 0.10 * n
    col = np.stack([g * 0.9, g * 1.05, g * 0.95], axis=-1)
    col = mix(col.astype(_F), np.array([0.75, 0.72, 0.2], _F), soft_band(z, 0.4, 0.8, fw))
    return col


def vehicle_paint(
    face: np.ndarray,
    p: np.ndarray,
    size: np.ndarray,
    color: np.ndarray,
    fw: np.ndarray,
    seed: int,
) -> np.ndarray:
    """Vehicle body [N, 3] from the hit point p [N, 3] in the box frame (origin at the box
    centre, x forward), the box face code [N] (0 +x front, 1 -x back, 2 +y left, 3 -y right,
    4 top, 5 bottom), box size [N, 3] and body colour [N, 3].

    Body colour with low-frequency noise, a dark lower band (bumpers, skirts), a window band,
    wheels on the sides, head- and tail-lights.
    """
    length, width, height = size[:, 0], size[:, 1], size[:, 2]
    zb = p[:, 2] + height / 2
    side = face >= 2
    u = np.where(side, p[:, 0], p[:, 1])
    half_u = np.where(side, length, width) / 2
    body = color * (1.0 + 0.22 * fbm(u + 13.0 * face, zb, seed + 51, 1.2, 4, fw))[:, None]
    # roof a little darker, with a seam
    top = face == 4
    body = np.where(top[:, None], body * 0.85, body)
    lower = soft_band(zb, -1.0, 0.38, fw)
    col = mix(body, np.array([0.10, 0.10, 0.11], _F), lower * (~top))
    # windows: band between 55% and 88% of the height; on the sides only over the cabin part
    truck = height > 2.4
    cab_lo = np.where(truck & side, half_u * 0.45, -half_u * 0.72)
    cab_hi = np.where(side, half_u * 0.72, half_u * 0.84)
    win = soft_band(zb, 0.55 * height, 0.88 * height, fw) * soft_band(u, cab_lo, cab_hi, fw)
    win = win * ((face != 4) & (face != 5))
    # front/back glass only on the cab side of trucks (front)
    win = np.where(truck & (face == 1), 0.0, win)
    gl = 0.5 + fbm(u, zb, seed + 52, 1.0, 3, fw)
    glass = np.stack([0.08 + 0.12 * gl, 0.10 + 0.13 * gl, 0.14 + 0.16 * gl], axis=-1).astype(_F)
    col = mix(col, glass, win)
    # pillars between windows on the sides
    pillar = soft_band(u, -0.06, 0.06, fw) * soft_band(zb, 0.55 * height, 0.88 * height, fw)
    col = mix(col, body * 0.6, pillar * side * (~truck))
    # wheels on the sides
    wx = np.where(side, np.minimum(np.abs(u - 0.32 * length), np.abs(u + 0.32 * length)), 9.0)
    r = np.hypot(wx, zb - 0.34)
    tyre = soft_step(0.34 - r, fw) * side
    hub = soft_step(0.16 - r, fw) * side
    col = mix(col, np.array([0.05, 0.05, 0.05], _F), tyre)
    col = mix(col, np.array([0.55, 0.56, 0.58], _F), hub)
    # lights on front (+x) and back (-x) faces
    lamp = soft_band(np.abs(u), 0.30 * width, 0.45 * width, fw) * soft_band(
        zb, 0.42 * np.minimum(height, 1.6), 0.52 * np.minimum(height, 1.6), fw
    )
    col = mix(col, np.array([0.95, 0.93, 0.80], _F), lamp * (face == 0))
    col = mix(col, np.array([0.80, 0.08, 0.06], _F), lamp * (face == 1))
    # number plate
    plate = soft_band(u, -0.26, 0.26, fw) * soft_band(zb, 0.32, 0.44, fw) * (face <= 1)
    col = mix(col, np.array([0.92, 0.92, 0.88], _F), plate)
    return np.clip(col, 0.0, 1.0).astype(_F)


def sky(d: np.ndarray, fw_rad: np.ndarray, seed: int) -> np.ndarray:
    """Sky colour [N, 3] for unit world directions d [N, 3] (z up): a horizon-to-zenith gradient
    with soft clouds; ``fw_rad`` is the pixel footprint in radians."""
    e = np.clip(d[:, 2], 0.0, 1.0)
    w = np.sqrt(e).astype(_F)
    horizon = np.array([0.80, 0.86, 0.92], _F)
    zenith = np.array([0.32, 0.52, 0.84], _F)
    col = mix(np.broadcast_to(horizon, d.shape), np.broadcast_to(zenith, d.shape), w)
    # clouds on a plane 1 km up
    ez = np.maximum(d[:, 2], 0.02)
    cx = d[:, 0] / ez * 1000.0
    cy = d[:, 1] / ez * 1000.0
    fw = fw_rad * 1000.0 / ez**2
    c = fbm(cx, cy, seed + 61, 900.0, 5, fw)
    cover = np.clip((c + 0.05) * 3.0, 0.0, 1.0) * np.clip((e - 0.02) * 8.0, 0.0, 1.0)
    return mix(col, np.array([0.93, 0.94, 0.96], _F), cover * 0.85)
