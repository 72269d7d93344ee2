"""Actors without labels: vehicles found and tracked in a log's LiDAR sweeps."""
