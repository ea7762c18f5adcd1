"""The H36M-17 skeleton definition."""
import numpy as np

from video3d import skeleton as sk


def test_structure():
    assert sk.NUM_JOINTS == 17 and len(sk.PARENTS) == 17 and len(sk.BONES) == 16
    assert sk.PARENTS[0] == -1 and all(p < c for c, p in enumerate(sk.PARENTS) if p >= 0)
    a = sk.adjacency()
    assert (a == a.T).all() and a.sum() == 32
    assert sk.hops_from_root().tolist() == [0, 1, 2, 3, 1, 2, 3, 1, 2, 3, 4, 3, 4, 5, 3, 4, 5]


def test_mirror_swaps_sides_and_negates_x():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(4, 17, 3))
    m = sk.mirror(p)
    np.testing.assert_allclose(m[:, 4, 0], -p[:, 1, 0])  # left hip <- mirrored right hip
    np.testing.assert_allclose(m[:, 4, 1:], p[:, 1, 1:])
    np.testing.assert_allclose(m[:, 0], p[:, 0] * [-1, 1, 1])
    np.testing.assert_allclose(sk.mirror(m), p)
    np.testing.assert_allclose(sk.bone_lengths(m), sk.bone_lengths(p)[:, [3, 4, 5, 0, 1, 2, 6, 7, 8, 9, 13, 14, 15, 10, 11, 12]])
