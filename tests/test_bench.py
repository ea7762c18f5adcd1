"""`video3d bench`: every stage reported, ratio consistent with the seconds, load average recorded."""
from __future__ import annotations

import json

import pytest

from tests.videos import person_clip


@pytest.mark.parametrize("render", [True, False])
def test_bench_reports_stages_and_ratio(tmp_path, tiny_weights, monkeypatch, render):
    import video3d.bench as bench
    from video3d.lift.lifter import Lifter

    real = Lifter.load.__func__
    monkeypatch.setattr(bench.Lifter, "load",
                        classmethod(lambda cls, name, w, dev: real(cls, name, str(tiny_weights["ktpformer"]), dev)))
    clip = person_clip(tmp_path / "walker.mp4", frames=12, fps=25.0)[0]
    res = bench.benchmark(clip, render=render)
    json.dumps(res)  # serialisable as written by --json
    s, f = res["seconds"], res["frames_per_s"]
    assert res["frames"] == 12 and res["mode"] == "concurrent" and res["render"] is render
    assert res["ratio_to_decode_detect"] == pytest.approx(s["total"] / s["decode+detect"])
    assert res["ratio_to_decode_detect"] >= 1.0  # end to end includes the detection stage
    assert res["ratio_to_decode_detect_alone"] == pytest.approx(s["total"] / s["decode+detect_alone"])
    assert f["end_to_end"] == pytest.approx(12 / s["total"])
    assert set(res["load_average_1min"]) == {"before_decode", "before_detect_only", "before_run", "after_run"}
    if render:
        assert f["decode+render+encode"] == pytest.approx(12 / s["decode+render"])
    else:
        assert f["render+encode"] is None and "decode+render" not in s
