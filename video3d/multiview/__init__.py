"""Calibrated multi-view 3D: association, triangulation, the learned refinement, the `multiview` command."""
