"""Which mocap clips train, validate (pick epochs and settings) and test (report only).

The definition is data: ``video3d/train/splits.json`` (one place; documented
in docs/training_data.md). Each of ``validation`` and ``test`` lists rules
``{"source": key, "subjects": [...]}`` or ``{"source": key, "clips": [...]}``;
a clip matching no rule trains. ``seeds`` gives the camera seed of each
held-out part, so validation and test are filmed by different cameras.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from video3d.errors import UserError

SPLITS_FILE = Path(__file__).with_name("splits.json")
PARTS = ("train", "validation", "test")


def _norm_subject(s: str | int) -> str:
    s = str(s).strip()
    return str(int(s)) if s.isdigit() else s


@dataclass(frozen=True)
class SplitDefinition:
    """Rules and camera seeds of the held-out parts (see module docstring)."""

    rules: dict[str, tuple[dict, ...]]
    seeds: dict[str, int]
    path: str
    version: int = 1
    #: set by :func:`with_validation_subjects`: explicitly named validation subjects win over test.
    validation_first: bool = False

    def part_of(self, clip) -> str:
        """'test', 'validation' or 'train' for a clip (``source``, ``subject``, ``name``); test wins
        (unless ``validation_first``)."""
        for part in (("validation", "test") if self.validation_first else ("test", "validation")):
            for rule in self.rules[part]:
                if rule.get("source") not in (None, clip.source):
                    continue
                if _norm_subject(clip.subject) in {_norm_subject(s) for s in rule.get("subjects", ())}:
                    return part
                if clip.name in set(rule.get("clips", ())):
                    return part
        return "train"

    def split(self, clips: Iterable) -> dict[str, list]:
        """{'train': [...], 'validation': [...], 'test': [...]} in input order."""
        out: dict[str, list] = {p: [] for p in PARTS}
        for c in clips:
            out[self.part_of(c)].append(c)
        return out

    def card(self) -> dict:
        """What a model card records: file, version, seeds and rules."""
        return {"file": Path(self.path).name, "version": self.version, "seeds": dict(self.seeds),
                "validation": [dict(r) for r in self.rules["validation"]],
                "test": [dict(r) for r in self.rules["test"]]}


def load_splits(path: str | Path | None = None) -> SplitDefinition:
    """Read a split definition (default: the packaged ``splits.json``)."""
    path = Path(path) if path else SPLITS_FILE
    try:
        d = json.loads(path.read_text())
        rules = {p: tuple(d[p]) for p in ("validation", "test")}
        seeds = {p: int(d["seeds"][p]) for p in ("validation", "test")}
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: not a split definition ({e})") from e
    if seeds["validation"] == seeds["test"]:
        raise UserError(f"{path}: validation and test must use different camera seeds")
    return SplitDefinition(rules=rules, seeds=seeds, path=str(path), version=int(d.get("version", 1)))


def with_validation_subjects(defn: SplitDefinition, subjects: Iterable[str]) -> SplitDefinition:
    """Replace the validation rules by 'these subjects of any source' (the legacy ``--val-subjects``).

    Explicitly named subjects validate even when the definition makes them
    test material (they still never train); the card then records
    ``validation_subjects``, and such a run's test numbers on them are not
    independent of its model selection.
    """
    rules = dict(defn.rules)
    rules["validation"] = ({"source": None, "subjects": [str(s) for s in subjects]},)
    return SplitDefinition(rules=rules, seeds=defn.seeds, path=defn.path, version=defn.version,
                           validation_first=True)
