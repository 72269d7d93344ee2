import pytest

from p4dsim.errors import AdapterNotFoundError, ConfigError
from p4dsim.source import SourceSpec


def test_parse_forms():
    s = SourceSpec.parse("kitti-raw:data/kitti_raw?date=2011_09_26&drive=0052&frame=5")
    assert (s.adapter, s.path, s.options, s.frame) == (
        "kitti-raw",
        "data/kitti_raw",
        {"date": "2011_09_26", "drive": "0052"},
        5,
    )
    assert SourceSpec.parse("toytown") == SourceSpec("toytown")
    t = SourceSpec.parse("toytown:?seed=3")
    assert t.path is None and t.options == {"seed": "3"}
    assert (
        SourceSpec.from_mapping(
            {
                "adapter": "kitti-raw",
                "path": "data/kitti_raw",
                "date": "2011_09_26",
                "drive": "0052",
                "frame": 5,
            }
        )
        == s
    )


@pytest.mark.parametrize("bad", ["", ":path", "toytown?frame=x", "toytown?a=1&a=2"])
def test_parse_errors(bad):
    with pytest.raises(ConfigError):
        SourceSpec.parse(bad)


def test_unknown_adapter_lists_installed():
    with pytest.raises(AdapterNotFoundError, match="installed adapters: .*toytown"):
        SourceSpec.parse("nosuch").open()
