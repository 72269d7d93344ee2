"""Pydantic option models of the KITTI adapters (``extra="forbid"``)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator


def _pad4(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:04d}"
    return value


class RawOptions(BaseModel):
    """``date`` (``YYYY_MM_DD``), ``drive`` (``"0052"``; an integer is zero-padded),
    ``lidar_front_only`` (keep only points with x > 0)."""

    model_config = ConfigDict(extra="forbid")

    date: str
    drive: str
    lidar_front_only: bool = False

    @field_validator("date")
    @classmethod
    def _date(cls, v: str) -> str:
        if not re.fullmatch(r"\d{4}_\d{2}_\d{2}", v):
            raise ValueError(f"date must look like 2011_09_26, got '{v}'")
        return v

    @field_validator("drive", mode="before")
    @classmethod
    def _drive(cls, v: object) -> object:
        v = _pad4(v)
        if isinstance(v, str) and not re.fullmatch(r"\d{4}", v):
            raise ValueError(f"drive must be four digits like \"0052\", got '{v}'")
        return v


class TrackingOptions(BaseModel):
    """``sequence`` (``"0000"``; an integer is zero-padded), ``split`` (training|testing),
    ``lidar_front_only``."""

    model_config = ConfigDict(extra="forbid")

    sequence: str
    split: Literal["training", "testing"] = "training"
    lidar_front_only: bool = False

    @field_validator("sequence", mode="before")
    @classmethod
    def _seq(cls, v: object) -> object:
        v = _pad4(v)
        if isinstance(v, str) and not re.fullmatch(r"\d{4}", v):
            raise ValueError(f"sequence must be four digits like \"0000\", got '{v}'")
        return v


class ObjectOptions(BaseModel):
    """``split`` (training|testing), ``lidar_front_only``."""

    model_config = ConfigDict(extra="forbid")

    split: Literal["training", "testing"] = "training"
    lidar_front_only: bool = False
