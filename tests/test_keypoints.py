"""Keypoint conversion and screen normalisation."""
import numpy as np
import pytest

from video3d import keypoints as kpmod
from video3d.keypoints import (BLAZEPOSE_TO_COCO, HEAD_EXTRAPOLATION, coco_to_h36m, denormalize_screen,
                               normalize_screen, to_h36m)


def random_coco(rng, n=5, d=2):
    return rng.normal(size=(n, 17, d))


def test_coco_to_h36m_definitions():
    rng = np.random.default_rng(0)
    c = random_coco(rng)
    h, _ = coco_to_h36m(c)
    pelvis = (c[:, 11] + c[:, 12]) / 2
    thorax = (c[:, 5] + c[:, 6]) / 2
    np.testing.assert_allclose(h[:, 0], pelvis)
    np.testing.assert_allclose(h[:, 8], thorax)
    np.testing.assert_allclose(h[:, 7], (pelvis + thorax) / 2)
    np.testing.assert_allclose(h[:, 9], c[:, 0])
    ears = (c[:, 3] + c[:, 4]) / 2
    np.testing.assert_allclose(h[:, 10], ears + HEAD_EXTRAPOLATION * (ears - thorax))
    # limbs: H36M right hip <- COCO right hip (12), left wrist <- COCO left wrist (9)
    np.testing.assert_allclose(h[:, 1], c[:, 12])
    np.testing.assert_allclose(h[:, 13], c[:, 9])
    np.testing.assert_allclose(h[:, 16], c[:, 10])


def test_conversion_commutes_with_affine_maps():
    """Why 2D training inputs match 3D targets: projection of an affine combination."""
    rng = np.random.default_rng(1)
    c = random_coco(rng, d=3)
    A, b = rng.normal(size=(3, 2)), rng.normal(size=2)
    lhs, _ = coco_to_h36m(c @ A + b)
    rhs, _ = coco_to_h36m(c)
    np.testing.assert_allclose(lhs, rhs @ A + b, atol=1e-9)


def test_scores_conversion():
    s = np.linspace(0.1, 0.9, 17)[None]
    _, hs = coco_to_h36m(np.zeros((1, 17, 2)), s)
    assert hs[0, 0] == pytest.approx(min(s[0, 11], s[0, 12]))
    assert hs[0, 9] == pytest.approx(s[0, 0])


def test_blazepose_mapping_and_formats():
    bp = np.arange(33 * 2, dtype=float).reshape(1, 33, 2)
    h, _ = to_h36m(bp, None, "blazepose")
    c = bp[:, list(BLAZEPOSE_TO_COCO)]
    np.testing.assert_allclose(h, coco_to_h36m(c)[0])
    with pytest.raises(ValueError, match="unknown keypoint format"):
        to_h36m(bp, None, "openpose")
    with pytest.raises(ValueError, match="17 joints"):
        to_h36m(bp, None, "coco")
    assert kpmod.FORMATS == ("h36m", "coco", "blazepose")


def test_screen_normalisation_round_trip_and_values():
    kp = np.array([[0.0, 0.0], [1920.0, 1080.0], [960.0, 540.0]])
    n = normalize_screen(kp, 1920, 1080)
    np.testing.assert_allclose(n[0], [-1, -1080 / 1920])
    np.testing.assert_allclose(n[1], [1, 1080 / 1920])
    np.testing.assert_allclose(n[2], [0, 0], atol=1e-6)
    np.testing.assert_allclose(denormalize_screen(n, 1920, 1080), kp, atol=1e-3)
