"""Geometry on the ground floor: cameras, projection, calibration, triangulation.

Depends on numpy/scipy only; every stage (detect, lift, render, export, train) may import it.
"""
