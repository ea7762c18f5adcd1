"""Cross-view person association by reprojection consistency.

Each view offers a list of candidate 2D tracks (one per person its detector
follows). Two candidates from different views are the same person when
triangulating them together reprojects well: the cost of a pair is the median
(over frames and joints both views see) two-view reprojection error, divided
by the person's size in pixels so views of different resolution compare.
Pairs are merged greedily, cheapest first (union-find, at most one candidate
per view per person, every candidate of a group consistent with every other
member). A single-person detector gives one candidate per view; the same code
then checks whether the views agree on who it is.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from video3d.geometry.camera import CalibratedCamera
from video3d.geometry.triangulation import triangulate

#: Group cost (median reprojection error / person size) above which tracks are not one person
#: (consistent synthetic tracks with 0.5 px noise: 0.003; a different person in one of 3 views: 0.08-0.26).
MAX_PAIR_COST = 0.06


@dataclass
class Track2D:
    """One person's 2D track in one view: keypoints (T, 17, 2) px (NaN = missing), scores (T, 17)."""

    keypoints: np.ndarray
    scores: np.ndarray

    @property
    def size_px(self) -> float:
        """Median over frames of the keypoints' bbox diagonal (pixels)."""
        kp = self.keypoints[np.isfinite(self.keypoints).all(axis=-1).any(axis=-1)]  # frames with a point
        if not len(kp):
            return 1.0
        diag = np.linalg.norm(np.nanmax(kp, axis=1) - np.nanmin(kp, axis=1), axis=-1)
        d = np.nanmedian(diag) if np.isfinite(diag).any() else np.nan
        return float(d) if np.isfinite(d) and d > 0 else 1.0


@dataclass
class PersonGroup:
    """One person across views: ``members[v]`` is the candidate index in view v, or None."""

    members: list[int | None]
    cost: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def num_views(self) -> int:
        return sum(m is not None for m in self.members)


def group_cost(tracks: Sequence[Track2D], cameras: Sequence[CalibratedCamera], min_score: float = 0.3) -> float:
    """Median reprojection error of tracks triangulated together, relative to each view's person size.

    Median over frames, joints and views of the points at least two views saw; inf if none.
    """
    pts = np.stack([t.keypoints for t in tracks]).astype(np.float64)
    sc = np.stack([t.scores for t in tracks]).astype(np.float64)
    tri = triangulate(pts, sc, list(cameras), min_score=min_score, max_error_px=np.inf)
    err = tri.errors[:, tri.num_views >= 2]
    if err.size == 0 or not np.isfinite(err).any():
        return float("inf")
    rel = err / np.array([t.size_px for t in tracks])[:, None]
    return float(np.nanmedian(rel))


def pair_cost(a: Track2D, b: Track2D, cam_a: CalibratedCamera, cam_b: CalibratedCamera,
              min_score: float = 0.3) -> float:
    """Median two-view reprojection error of tracks a and b, relative to the person size; inf if nothing shared."""
    return group_cost([a, b], [cam_a, cam_b], min_score)


def associate(candidates: Sequence[Sequence[Track2D]], cameras: Sequence[CalibratedCamera],
              max_cost: float = MAX_PAIR_COST) -> list[PersonGroup]:
    """Group candidates of V views into people.

    candidates: per view, a list of tracks (all of the same length T). Returns
    groups seen by at least two views, sorted by number of views (desc) then
    cost. Single-person input (one candidate per view) always gives one group;
    with 3+ views, a view inconsistent with the others (who agree) is left out of it
    (its member is None) with a note.
    """
    V = len(candidates)
    if all(len(c) == 1 for c in candidates):
        tracks = [c[0] for c in candidates]
        group = PersonGroup(members=[0] * V, cost=group_cost(tracks, cameras))
        if group.cost > max_cost:
            # Which view spoils it? The one without which the others agree best.
            rest = [group_cost([t for u, t in enumerate(tracks) if u != v], [c for u, c in enumerate(cameras) if u != v])
                    if V >= 3 else float("inf") for v in range(V)]
            v = int(np.argmin(rest))
            if rest[v] <= max_cost:
                group.notes.append(f"view {v} disagrees with the others (relative reprojection error {group.cost:.2f} "
                                   f"with it, {rest[v]:.2f} without): it shows a different person and is left out")
                group.members[v] = None
                group.cost = rest[v]
            else:
                group.notes.append(f"view 0 and the others disagree on who it is (relative reprojection error "
                                   f"{group.cost:.2f} > {max_cost}): check the calibration, the video order and --offset")
        return [group]
    nodes = [(v, i) for v in range(V) for i in range(len(candidates[v]))]
    edges = []
    for (u, i), (v, k) in itertools.combinations(nodes, 2):
        if u != v:
            c = pair_cost(candidates[u][i], candidates[v][k], cameras[u], cameras[v])
            if c <= max_cost:
                edges.append((c, (u, i), (v, k)))
    edges.sort(key=lambda e: e[0])
    cost_of = {(a, b): c for c, a, b in edges} | {(b, a): c for c, a, b in edges}
    group_of: dict[tuple[int, int], int] = {}
    groups: list[dict[int, int]] = []
    for c, a, b in edges:
        ga, gb = group_of.get(a), group_of.get(b)
        if ga is None and gb is None:
            groups.append({a[0]: a[1], b[0]: b[1]})
            group_of[a] = group_of[b] = len(groups) - 1
            continue
        if ga is not None and gb is not None:
            if ga == gb or set(groups[ga]) & set(groups[gb]):
                continue
            if all((x, y) in cost_of for x in groups[ga].items() for y in groups[gb].items()):
                groups[ga].update(groups[gb])
                for node in groups[gb].items():
                    group_of[node] = ga
                groups[gb] = {}
            continue
        g, new = (ga, b) if ga is not None else (gb, a)
        if new[0] in groups[g] or not all((m, new) in cost_of for m in groups[g].items()):
            continue
        groups[g][new[0]] = new[1]
        group_of[new] = g
    out = []
    for g in groups:
        if len(g) >= 2:
            costs = [cost_of[(x, y)] for x, y in itertools.combinations(g.items(), 2)]
            out.append(PersonGroup(members=[g.get(v) for v in range(V)], cost=float(np.median(costs))))
    out.sort(key=lambda p: (-p.num_views, p.cost))
    return out
