"""Which renderer devices a job uses, and the GPUs of this machine, found without
initialising CUDA in the calling process.

The driver of a job must not create a CUDA context (it would hold GPU memory for nothing and
make forked helpers unsafe), so it never asks torch: it reads ``CUDA_VISIBLE_DEVICES`` when
set, else the list ``nvidia-smi -L`` prints. Each rendering process is then started with
``CUDA_VISIBLE_DEVICES`` naming its one device.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from p4dsim.augment.tasks import ShardSpec

_MIG = re.compile(r"\(UUID:\s*(MIG-[^)\s]+)\)")


def parse_nvidia_smi(text: str) -> list[str]:
    """Device ids from ``nvidia-smi -L`` output: a GPU's index, or the UUIDs of its MIG
    instances where it is partitioned (what ``CUDA_VISIBLE_DEVICES`` takes)."""
    devices: list[str] = []
    gpu: str | None = None
    migs: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"GPU (\d+):", s)
        if m:
            if gpu is not None:
                devices += migs or [gpu]
            gpu, migs = m.group(1), []
        elif s.startswith("MIG") and (mm := _MIG.search(s)):
            migs.append(mm.group(1))
    if gpu is not None:
        devices += migs or [gpu]
    return devices


def visible_gpus() -> list[str]:
    """The devices rendering processes may use, one id each (see :func:`parse_nvidia_smi`);
    empty when there is none or ``nvidia-smi`` is missing."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [d.strip() for d in env.split(",") if d.strip()]
        # CUDA stops at the first invalid entry; "-1" hides every device
        out = []
        for d in ids:
            if d.startswith("-") or d.lower() == "nodevfiles":
                break
            out.append(d)
        return out
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        proc = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(proc.stdout) if proc.returncode == 0 else []


def gsplat_installed() -> bool:
    """gsplat can be imported (checked without importing it, or torch)."""
    try:
        return importlib.util.find_spec("gsplat") is not None
    except (ImportError, ValueError):
        return False


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` where a GPU and gsplat exist, else ``cpu``; others unchanged.
    The same choice as :func:`p4dsim.render.get_renderer` makes, without touching CUDA."""
    if device != "auto":
        return device
    return "cuda" if visible_gpus() and gsplat_installed() else "cpu"


def shard_devices(shards: list[ShardSpec]) -> list[str]:
    """The renderer device names the shards' runs ask for (``--device``, else each run's
    ``render.device``), in first-use order."""
    seen: dict[str, None] = {}
    for s in shards:
        for r in s.runs:
            seen.setdefault(s.device or r.scenario.get("render", {}).get("device", "auto"))
    return list(seen)


@dataclass(frozen=True)
class SplitPlan:
    """How a split job runs: ``renderers`` rendering processes (or Ray actors) with the GPU
    ids of ``gpus`` (empty: no GPU), loading the renderers of ``warm``."""

    renderers: int
    gpus: list[str]
    warm: list[str]


def split_plan(
    shards: list[ShardSpec], split: bool | None, render_procs: int | None
) -> SplitPlan | None:
    """None when the shards run in all-in-one workers: ``split`` False, or None (automatic)
    and no run renders on CUDA (``cuda``, or ``auto`` where this machine has a GPU and
    gsplat). Otherwise one rendering process per GPU of this machine (``render_procs``
    overrides; one without GPUs)."""
    devices = shard_devices(shards)
    cuda = "cuda" in {resolve_device(d) for d in devices}
    if split is False or (split is None and not cuda):
        return None
    gpus = visible_gpus() if cuda else []
    return SplitPlan(render_procs or max(1, len(gpus)), gpus, devices)
