"""p4dsim: one driving-log frame to a 4D Gaussian scene, replayed along counterfactual paths."""

__version__ = "0.1.0"
