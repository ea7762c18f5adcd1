"""video3d: ordinary videos of people -> 3D skeletons."""
__version__ = "0.1.0"
