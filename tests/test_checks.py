"""Checks that live in the modules they belong to: devices, labels, actor sources, track ids,
an adapter's native resolution."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from p4dsim.errors import ConfigError
from p4dsim.perception.select import parse_actor_sources
from p4dsim.scenario.actors import check_track_ids
from p4dsim.scenario.model import ActorSelect, Scenario
from p4dsim.source import SourceSpec
from p4dsim.types import check_device


def test_device_is_one_literal():
    assert [check_device(d) for d in ("auto", "cpu", "cuda", None)] == ["auto", "cpu", "cuda", None]
    with pytest.raises(ConfigError, match="--device must be auto, cpu or cuda, got 'gpu'"):
        check_device("gpu")


def test_label_typo_is_an_error():
    assert ActorSelect(label="vehicle").label == "vehicle"
    with pytest.raises(ValidationError, match="vehicle"):
        ActorSelect(label="vehicel")


def test_actor_sources():
    assert parse_actor_sources("default, none") == [None, "none"]
    with pytest.raises(ConfigError, match="--actors: unknown actor source 'lidar'"):
        parse_actor_sources("lidar")


def test_native_resolution_is_an_adapter_capability():
    spec = SourceSpec.parse("toytown:?seed=2").at_resolution(128, 40)
    assert spec.options == {"seed": "2", "width": 128, "height": 40}
    given = SourceSpec.parse("toytown:?width=64&height=20")
    assert given.at_resolution(128, 40) == given  # the source's own size wins
    kitti = SourceSpec.parse("kitti-raw:/nowhere?date=2011_09_26&drive=0052")
    assert kitti.at_resolution(128, 40) == kitti  # resampled by the caller instead


def test_track_ids_against_the_log():
    log = SourceSpec.parse("toytown:?width=64&height=20&frames=3").open()
    tracks = sorted(log.tracks())

    def scen(tid: str) -> Scenario:
        return Scenario.model_validate(
            {
                "source": {"adapter": "toytown"},
                "duration_s": 1.0,
                "actors": {"rules": [{"select": {"track_id": tid}, "behaviour": {"type": "stop"}}]},
            }
        )

    opened = []
    check_track_ids(
        [Scenario.model_validate({"source": {"adapter": "toytown"}, "duration_s": 1.0})],
        lambda: opened.append(1) or log,
        "f.yaml",
    )
    assert not opened  # no rule names a track: the log is not opened
    check_track_ids([scen(tracks[0])], log, "f.yaml")
    with pytest.raises(
        ConfigError, match=r"f.yaml: field 'actors.rules\[0\].select': track id 'nope'"
    ):
        check_track_ids([scen("nope")], lambda: log, "f.yaml")


def test_oracle_is_a_declared_capability():
    """Evaluation asks a log for its oracle instead of reaching into toytown: toytown's true
    view at a logged pose and time is that frame's image; a log without one says None."""
    import numpy as np

    from p4dsim.eval.future import has_oracle
    from p4dsim.types import Log, Oracle

    log = SourceSpec.parse("toytown:?width=64&height=20&frames=3").open()
    oracle = log.oracle()
    assert isinstance(oracle, Oracle) and has_oracle(log)
    fr = log.frame(2)
    view = oracle.true_view(fr.camera, fr.T_world_ego @ fr.camera.T_ego_camera, oracle.time_of(2))
    np.testing.assert_array_equal(view, fr.image)
    pts = oracle.true_lidar(fr.T_world_ego, oracle.time_of(2))
    np.testing.assert_array_equal(pts, fr.lidar)

    class Recorded(Log):
        def __len__(self):
            return 1

        def frame(self, index):
            raise NotImplementedError

        def ego_trajectory(self):
            return None

    assert Recorded().oracle() is None and not has_oracle(Recorded())
