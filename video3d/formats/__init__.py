"""File formats on the ground floor (BVH, calibration files): readers and writers with no dependency on the stages."""
