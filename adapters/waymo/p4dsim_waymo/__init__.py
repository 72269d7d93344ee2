"""p4dsim plugin for the Waymo Open Dataset.

Readers for v1 ``Frame`` TFRecords (:class:`WaymoV1Log`) and v2 Parquet components
(:class:`WaymoV2Log`), behind the ``waymo`` adapter, and the ``waymo-v2`` exporter that writes
rendered p4dsim datasets as v2 components.
"""

from p4dsim_waymo.adapter import WaymoAdapter, WaymoOptions
from p4dsim_waymo.crc32c import crc32c, masked_crc32c
from p4dsim_waymo.tfrecord import index_records, read_record, write_records

__all__ = [
    "WaymoAdapter",
    "WaymoOptions",
    "crc32c",
    "masked_crc32c",
    "index_records",
    "read_record",
    "write_records",
]
