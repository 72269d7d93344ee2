"""The monocular-depth hook: a tiny randomly initialised transformers model built from a
config (no download) drives the build; missing weights give a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from p4dsim.errors import ConfigError
from p4dsim.scene.builder import BuildConfig, build_scene
from p4dsim.source import SourceSpec


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    cfg = transformers.DPTConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=64,
        patch_size=16,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        backbone_out_indices=[0, 1, 2, 3],
        head_in_index=-1,
    )
    model = transformers.DPTForDepthEstimation(cfg)
    path = tmp_path_factory.mktemp("tiny_dpt")
    model.save_pretrained(path)
    return path


def test_mono_depth_builds_scene(tiny_model):
    log = SourceSpec.parse("toytown:?width=96&height=32").open()
    frame = log.frame(0)
    scene = build_scene(frame, BuildConfig(depth_source="mono", mono_model=str(tiny_model)))
    assert scene.num_gaussians() >= 96 * 32
    assert np.all(np.isfinite(scene.static.means))


def test_mono_without_weights_is_a_clear_error(tmp_path):
    log = SourceSpec.parse("toytown:?width=96&height=32").open()
    frame = log.frame(0)
    with pytest.raises(ConfigError, match="config.json"):
        build_scene(frame, BuildConfig(depth_source="mono", mono_model=str(tmp_path)))
    with pytest.raises(ConfigError, match="needs a model"):
        build_scene(frame, BuildConfig(depth_source="mono"))
