"""JPEG encoding of rendered frames on the GPU (torchvision's nvJPEG), when available."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def encode_jpeg_gpu(rgb: torch.Tensor, quality: int) -> list[bytes] | None:
    """JPEG bytes of uint8 [B, H, W, 3] CUDA images through torchvision (nvJPEG), or None when
    torchvision cannot encode on the GPU here."""
    import torch

    try:
        from torchvision.io import encode_jpeg
    except Exception:
        return None
    try:
        chw = [im.permute(2, 0, 1).contiguous() for im in rgb]
        encoded = encode_jpeg(chw, quality=int(quality))
    except Exception as exc:  # no nvJPEG in this build
        log.info("GPU JPEG encoding unavailable (%s); encoding on the CPU", exc)
        return None
    # one copy to the host for the whole batch
    flat = torch.cat([e.reshape(-1) for e in encoded]).cpu().numpy()
    ends = np.cumsum([0] + [int(e.numel()) for e in encoded])
    return [flat[a:b].tobytes() for a, b in zip(ends[:-1], ends[1:], strict=True)]
