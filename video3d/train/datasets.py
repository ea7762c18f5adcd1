"""Assemble training/validation data from mocap folders or Human3.6M files."""
from __future__ import annotations

from pathlib import Path

from video3d.errors import UserError

#: Held-out subjects for validation: CMU subject 7 (Character Creator rig) and
#: the subjects recorded through other rigs (11: ASF/AMC, 131: raw BVH), so the
#: validation measures unseen people, unseen cameras and unseen conversions.
DEFAULT_VAL_SUBJECTS = ("7", "11", "131")

REACTIDLE_CITATION = ("ReActIdle (MIT licence): E. Atxa Landa et al., Evaluating Idle Animation "
                      "Believability: a User Perspective, arXiv:2509.05023, 2025.")

CMU_ACKNOWLEDGEMENT = ("The data used in this project was obtained from mocap.cs.cmu.edu. "
                       "The database was created with funding from NSF EIA-0196217.")


def load_mocap_split(root: str | Path | None, val_subjects: tuple[str, ...] = DEFAULT_VAL_SUBJECTS):
    """Load every clip under ``root`` (or the default mocap folder) and split by subject."""
    from video3d.mocap.clips import default_mocap_root, load_mocap_dir, split_by_subject

    root = Path(root) if root else default_mocap_root()
    if root is None or not Path(root).is_dir():
        raise UserError("no mocap data: pass --mocap PATH or set VIDEO3D_MOCAP "
                        "(e.g. ../shared/data/mocap)")
    clips = load_mocap_dir(root)
    if not clips:
        raise UserError(f"no .bvh or .amc clips found under {root}")
    train, val = split_by_subject(clips, [str(int(s)) if s.isdigit() else s for s in val_subjects])
    if not train:
        raise UserError(f"every clip under {root} is a validation subject; nothing to train on")
    return train, val, Path(root)


def load_h36m_split(path_3d: str | Path, path_2d: str | Path, cameras: str | Path | None = None):
    """Human3.6M (VideoPose3D layout): train S1,5,6,7,8 / test S9,11."""
    from video3d.data.h36m import TEST_SUBJECTS, TRAIN_SUBJECTS, load_h36m

    for p in (path_3d, path_2d):
        if not Path(p).is_file():
            raise UserError(f"Human3.6M file not found: {p}")
    seqs = load_h36m(path_3d, path_2d, cameras=cameras)
    train = [s for s in seqs if s.subject in TRAIN_SUBJECTS]
    test = [s for s in seqs if s.subject in TEST_SUBJECTS]
    return train, test


def load_mocap_parts(root: str | Path | None, sources: str | tuple[str, ...] | None = None,
                     splits_file: str | Path | None = None, val_subjects: tuple[str, ...] | None = None):
    """Every clip of the selected sources, split into train/validation/test by the split definition.

    Returns (parts {"train", "validation", "test"} -> clips, split definition,
    root). ``val_subjects`` replaces the validation rules (legacy
    ``--val-subjects``); test clips never train either way.
    """
    from video3d.mocap.clips import default_mocap_root, load_mocap_dir, resolve_sources
    from video3d.train.splits import load_splits, with_validation_subjects

    keys = resolve_sources(sources)
    root = Path(root) if root else default_mocap_root()
    if root is None or not Path(root).is_dir():
        raise UserError("no mocap data: pass --mocap PATH or set VIDEO3D_MOCAP "
                        "(e.g. ../shared/data/mocap)")
    clips = load_mocap_dir(root, sources=keys)
    if not clips:
        raise UserError(f"no clips of sources {', '.join(keys)} found under {root}")
    defn = load_splits(splits_file)
    if val_subjects:
        defn = with_validation_subjects(defn, val_subjects)
    parts = defn.split(clips)
    if not parts["train"]:
        raise UserError(f"every clip under {root} is held out; nothing to train on")
    return parts, defn, Path(root)
