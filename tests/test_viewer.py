"""viewer.html, index.html and `video3d view`: data, errors, size, and the page in a real headless Chromium."""
from __future__ import annotations

import base64
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.chromium import Chromium, find_chromium
from tests.viewer_results import frame_number_video, make_result
from video3d.cli import main
from video3d.errors import UserError
from video3d.viewer import build_page, load_result, write_viewer
from video3d.viewer.index import write_index
from video3d.viewer.launch import has_display
from video3d.viewer.page import video_link

REPO = Path(__file__).resolve().parents[1]
F16_TOL = 2e-3  # float16 at a few metres: ~1 mm steps


def payload(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="video3d-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def decode_f16(s: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), "<f2").astype(np.float32).reshape(shape)


# ------------------------------------------------------------------ data, no browser
def test_payload_round_trip_places_poses_on_the_trajectory(tmp_path):
    truth = make_result(tmp_path / "r", num_frames=40, invalid=[5, 6, 7])
    d = payload(build_page(tmp_path / "r"))
    assert d["numFrames"] == 40 and d["fps"] == 30.0 and len(d["people"]) == 1
    p = d["people"][0]
    poses = decode_f16(p["poses"], (40, 17, 3))
    np.testing.assert_allclose(poses, truth["placed"], atol=F16_TOL)
    # the pelvis really travels (the procedural walk covers > 1 m in 40 frames at 30 fps? at least 0.5 m)
    assert np.linalg.norm(poses[-1, 0, :2] - poses[0, 0, :2]) > 0.5
    np.testing.assert_allclose(decode_f16(p["trajectory"], (40, 3)), truth["placed"][:, 0], atol=F16_TOL)
    assert np.frombuffer(base64.b64decode(p["valid"]), np.uint8).tolist() == truth["valid"].astype(int).tolist()
    assert len(d["boneColors"]) == 16 and d["bones"][0] == [0, 1]
    # left limbs blue, right limbs red, as in the renders
    colours = dict(zip(map(tuple, d["bones"]), d["boneColors"]))
    assert colours[(4, 5)] == "#0000ff" and colours[(1, 2)] == "#ff0000"


def test_people_and_cameras(tmp_path):
    truth = make_result(tmp_path / "r", num_frames=20, people=3, cameras=4)
    res = load_result(tmp_path / "r")
    assert [p.track_id for p in res.people] == [1, 2, 3]
    for p, want in zip(res.people, truth["people_placed"]):
        np.testing.assert_allclose(p.poses, want, atol=1e-5)
    assert [c.name for c in res.cameras] == ["cam1", "cam2", "cam3", "cam4"]
    np.testing.assert_allclose(res.cameras[0].center, [4, 0, 1.5], atol=1e-9)


def test_no_trajectory_keeps_root_relative_poses(tmp_path):
    truth = make_result(tmp_path / "r", num_frames=10, trajectory=False)
    (p,) = load_result(tmp_path / "r").people
    assert p.trajectory is None
    np.testing.assert_allclose(p.poses, truth["placed"])


def test_page_size_of_ten_minutes(tmp_path):
    """< 2 MB + 1 MB per minute of 30 fps video per person."""
    make_result(tmp_path / "r", num_frames=18000, invalid=range(100, 400))
    size = write_viewer(tmp_path / "r").stat().st_size
    assert size < 2e6 + 10 * 1e6
    make_result(tmp_path / "p", num_frames=1800, people=3)
    assert write_viewer(tmp_path / "p").stat().st_size < 2e6 + 1 * 3 * 1e6


def test_video_link_prefers_overlay_then_relative_source(tmp_path):
    out = tmp_path / "out" / "clip"
    out.mkdir(parents=True)
    src = tmp_path / "my videos" / "clip #1.mp4"
    src.parent.mkdir()
    src.write_bytes(b"x")
    assert video_link(out, src) == "../../my%20videos/clip%20%231.mp4"
    assert video_link(out, None) is None
    (out / "overlay.mp4").write_bytes(b"x")
    assert video_link(out, src) == "overlay.mp4"


@pytest.mark.parametrize("case", ["no folder", "no npz", "not a zip", "truncated", "missing key", "bad shape"])
def test_view_errors_are_one_line(tmp_path, case, capsys):
    folder = tmp_path / "res"
    if case != "no folder":
        make_result(folder, num_frames=10)
        npz = folder / "keypoints.npz"
        if case == "no npz":
            npz.unlink()
        elif case == "not a zip":
            npz.write_text("garbage")
        elif case == "truncated":
            npz.write_bytes(npz.read_bytes()[:200])
        elif case == "missing key":
            np.savez(npz, fps=30.0)
        elif case == "bad shape":
            np.savez(npz, keypoints_3d_world=np.zeros((5, 16, 3)), fps=30.0)
    with pytest.raises(UserError):
        load_result(folder)
    assert main(["view", str(folder), "--no-browser"]) == 1
    captured = capsys.readouterr()
    err = captured.err
    lines = [l for l in err.splitlines() if l.strip()]
    assert captured.out == ""
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert not (folder / "viewer.html").exists()


def test_view_prints_the_path_without_a_display(tmp_path, capsys, monkeypatch):
    make_result(tmp_path / "r", num_frames=10)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    import webbrowser
    monkeypatch.setattr(webbrowser, "open", lambda *a, **k: pytest.fail("no browser without a display"))
    assert main(["view", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r" / "viewer.html")
    assert has_display({"DISPLAY": ":0"}, "linux") and has_display({"WAYLAND_DISPLAY": "w"}, "linux")
    assert not has_display({}, "linux") and has_display({}, "darwin")


def test_view_opens_a_browser_when_there_is_a_display(tmp_path, capsys, monkeypatch):
    make_result(tmp_path / "r", num_frames=10)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(sys, "platform", "linux")
    opened = []
    import webbrowser
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or True)
    assert main(["view", str(tmp_path / "r")]) == 0
    assert opened == [(tmp_path / "r" / "viewer.html").resolve().as_uri()]


def test_index_lists_every_video_with_thumbnail_and_link(tmp_path):
    from video3d.batch import JobResult

    out = tmp_path / "out"
    make_result(out / "a", num_frames=12, invalid=[0, 1, 2])
    frame_number_video(out / "a" / "overlay.mp4", 12)
    write_viewer(out / "a")
    rows = [JobResult("a", "videos/a.mp4", "ok", 12, 1.5), JobResult("b <x>", "videos/b <x>.mp4", "failed", 0, 0.2,
                                                                     "no person detected")]
    page = write_index(out, rows).read_text()
    assert page.count("<tr>") == 3
    assert 'href="a/viewer.html"' in page and "b &lt;x&gt;" in page and "no person detected" in page
    thumbs = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page)
    assert len(thumbs) == 1
    import cv2
    img = cv2.imdecode(np.frombuffer(base64.b64decode(thumbs[0]), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert img.shape[1] == 160
    assert abs(float(img.mean()) - 4 * 3) < 4  # the first valid frame (3), not frame 0
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # written atomically


def test_run_writes_viewer_unless_no_viewer(tmp_path, tiny_weights):
    from tests.videos import person_clip
    from video3d.pipeline import RunOptions, run_video

    clip, _ = person_clip(tmp_path / "in" / "walk er.mp4", frames=12, width=160, height=120)
    res = run_video(clip, tmp_path / "out", RunOptions(weights=str(tiny_weights["ktpformer"]), render=False))
    page = (res.out_dir / "viewer.html").read_text()
    assert res.out_dir / "viewer.html" in res.files
    d = payload(page)
    assert d["numFrames"] == 12 and d["video"] == "../../in/walk%20er.mp4"
    res = run_video(clip, tmp_path / "out2", RunOptions(weights=str(tiny_weights["ktpformer"]), render=False,
                                                        viewer=False))
    assert not (res.out_dir / "viewer.html").exists()


# ------------------------------------------------------------------ the page in headless Chromium
@pytest.fixture(scope="module")
def browser():
    if not find_chromium():
        pytest.skip("chromium not found (Debian: apt-get install chromium; or set VIDEO3D_CHROMIUM)")
    try:
        b = Chromium(width=1280, height=900)
    except Exception as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"chromium could not start headless: {e}")
    yield b
    b.close()


def open_page(browser: Chromium, page: Path) -> None:
    browser.events.clear()
    browser.open(page)
    browser.wait_for("window.video3d && window.video3d.ready")


def png_pixels(png: bytes) -> np.ndarray:
    import cv2
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]  # RGB


def pane_rect(browser: Chromium, element_id: str) -> tuple[int, int, int, int]:
    r = browser.eval(f"(() => {{ const r = document.getElementById('{element_id}').getBoundingClientRect(); "
                     "return [r.left, r.top, r.right, r.bottom]; })()")
    return tuple(int(round(v)) for v in r)


@pytest.mark.slow  # headless Chromium: kept out of the quick loop, run by CI
def test_page_in_chromium_draws_and_seeks(browser, tmp_path):
    n = 45
    truth = make_result(tmp_path / "r", num_frames=n, invalid=[20, 21, 22])
    frame_number_video(tmp_path / "r" / "overlay.mp4", n)
    page = write_viewer(tmp_path / "r")
    open_page(browser, page)
    assert browser.eval("video3d.webgl()") is True
    assert browser.eval("video3d.numFrames()") == n and browser.eval("video3d.currentFrame()") == 0
    browser.wait_for("video3d.videoReady()", timeout=30)

    # the 3D canvas is not blank: bone colours (red and blue) inside the 3D pane
    img = png_pixels(browser.screenshot())
    x0, y0, x1, y1 = pane_rect(browser, "view3d")
    pane = img[y0:y1, x0:x1].astype(int)
    red = ((pane[..., 0] > 200) & (pane[..., 1] < 80) & (pane[..., 2] < 80)).sum()
    blue = ((pane[..., 2] > 200) & (pane[..., 0] < 80) & (pane[..., 1] < 80)).sum()
    assert red > 200 and blue > 100, (red, blue)

    # seeking to frame N shows pose N, drawn where the hook says, video at frame N
    screen = {}
    for f in (3, 30, n - 1):
        assert browser.eval(f"video3d.seek({f})") == f and browser.eval("video3d.currentFrame()") == f
        pose = np.array(browser.eval("video3d.currentPose()"), float)
        np.testing.assert_allclose(pose, truth["placed"][f], atol=F16_TOL)
        screen[f] = browser.eval("video3d.pelvisScreen()")
        img = png_pixels(browser.screenshot())
        x, y = int(round(screen[f]["x"])), int(round(screen[f]["y"]))
        patch = img[y - 3:y + 4, x - 3:x + 4].astype(int)
        assert (patch.sum(axis=-1) < 3 * 120).any(), f"no dark pelvis joint drawn at {x},{y} for frame {f}"
        browser.wait_for(f"Math.abs(document.getElementById('video').currentTime - {(f + 0.5) / 30}) < 1e-3 "
                         "&& !document.getElementById('video').seeking", timeout=20)
    assert abs(screen[30]["x"] - screen[3]["x"]) > 20  # the person walked across the screen

    # frames without a valid pose are marked
    browser.eval("video3d.seek(21)")
    assert browser.eval("video3d.isValid()") is False
    assert browser.eval("getComputedStyle(document.getElementById('badge')).display") == "block"
    assert "no pose" in browser.eval("document.getElementById('flabel').textContent")
    browser.eval("video3d.seek(23)")
    assert browser.eval("getComputedStyle(document.getElementById('badge')).display") == "none"

    # playing follows the video: the skeleton frame is the video's frame
    browser.eval("video3d.seek(0); video3d.play()")
    browser.wait_for("video3d.currentFrame() >= 8", timeout=20)
    browser.eval("video3d.pause()")
    t = browser.eval("document.getElementById('video').currentTime")
    assert browser.eval("video3d.currentFrame()") == int(t * 30 + 1e-3)
    assert browser.errors() == []


@pytest.mark.slow  # headless Chromium: kept out of the quick loop, run by CI
def test_page_with_people_cameras_and_no_video(browser, tmp_path):
    make_result(tmp_path / "r", num_frames=30, people=2, cameras=4)
    open_page(browser, write_viewer(tmp_path / "r"))
    assert browser.eval("video3d.pelvisScreen(0) !== null && video3d.pelvisScreen(1) !== null")
    a, b = browser.eval("[video3d.pelvisScreen(0).x, video3d.pelvisScreen(1).x]")
    assert b - a > 20  # person 2 stands 1.2 m to the right
    assert browser.eval("document.getElementById('views').classList.contains('novideo')")
    assert browser.eval("video3d.seek(29)") == 29
    # stepping: keys, buttons, scrubber
    browser.eval("video3d.seek(10); document.activeElement && document.activeElement.blur()")
    browser.press("ArrowRight", 39)
    browser.press("ArrowRight", 39)
    assert browser.eval("video3d.currentFrame()") == 12
    browser.press("ArrowLeft", 37)
    assert browser.eval("video3d.currentFrame()") == 11
    browser.eval("document.getElementById('next').click()")
    assert browser.eval("video3d.currentFrame()") == 12
    browser.eval("document.getElementById('prev').click(); document.getElementById('prev').click()")
    assert browser.eval("video3d.currentFrame()") == 10
    browser.eval("const s = document.getElementById('scrub'); s.value = '25'; s.dispatchEvent(new Event('input'))")
    assert browser.eval("video3d.currentFrame()") == 25
    browser.press("End", 35)
    assert browser.eval("video3d.currentFrame()") == 29
    # without a video the clock drives playback
    browser.eval("video3d.seek(0); video3d.play()")
    browser.wait_for("video3d.currentFrame() >= 5", timeout=20)
    browser.eval("video3d.pause()")
    assert browser.errors() == []


@pytest.mark.slow  # headless Chromium: kept out of the quick loop, run by CI
def test_real_pipeline_result_in_chromium(browser, tmp_path, tiny_weights):
    """Through `video3d run` on a tiny generated clip: the page loads, the overlay plays, no errors.

    With VIDEO3D_WRITE_DOCS=1 (and the shipped weights) the demo clip's screenshot goes to docs/images/viewer.png.
    """
    from tests.videos import ffmpeg
    from video3d.pipeline import RunOptions, run_video

    write_docs = os.environ.get("VIDEO3D_WRITE_DOCS") == "1"
    if write_docs:
        clip = tmp_path / "demo_walk.mp4"
        ffmpeg("-i", str(REPO / "demo_videos" / "demo_walk.mp4"), "-frames:v", "120", "-an", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", str(clip))
        options = RunOptions()
    else:
        from tests.videos import person_clip
        clip, _ = person_clip(tmp_path / "walker.mp4", frames=16, width=160, height=120)
        options = RunOptions(weights=str(tiny_weights["ktpformer"]))
    res = run_video(clip, tmp_path / "out", options)
    open_page(browser, res.out_dir / "viewer.html")
    browser.wait_for("video3d.videoReady()", timeout=30)
    assert browser.eval("video3d.numFrames()") == res.num_frames
    assert browser.eval("video3d.seek(7)") == 7
    np.testing.assert_allclose(np.array(browser.eval("video3d.currentPose()"), float),
                               np.load(res.out_dir / "keypoints.npz")["keypoints_3d_world"][7], atol=F16_TOL)
    assert browser.errors() == []
    if write_docs:
        browser.eval("video3d.seek(60)")
        browser.wait_for("!document.getElementById('video').seeking", timeout=20)
        (REPO / "docs" / "images").mkdir(parents=True, exist_ok=True)
        (REPO / "docs" / "images" / "viewer.png").write_bytes(browser.screenshot())


def test_batch_writes_index_and_viewers(tmp_path, tiny_weights):
    from tests.videos import person_clip

    src = tmp_path / "videos"
    src.mkdir()
    person_clip(src / "walker.mp4", frames=12, width=160, height=120)
    (src / "broken.mp4").write_text("not a video")
    out = tmp_path / "out"
    args = ["batch", str(src), "--out", str(out), "--weights", str(tiny_weights["ktpformer"]), "--no-render"]
    assert main(args) == 1
    page = (out / "index.html").read_text()
    assert page.count("<tr>") == 3 and 'href="walker/viewer.html"' in page and "failed" in page
    assert (out / "walker" / "viewer.html").is_file()
    assert len(re.findall(r'src="data:image/jpeg;base64,', page)) == 1  # thumbnail from the input video
    assert payload((out / "walker" / "viewer.html").read_text())["video"] == "../../videos/walker.mp4"
    out2 = tmp_path / "out2"
    assert main(["batch", str(src), "--out", str(out2), "--weights", str(tiny_weights["ktpformer"]), "--no-render",
                 "--no-viewer"]) == 1
    assert not (out2 / "index.html").exists() and not (out2 / "walker" / "viewer.html").exists()


@pytest.mark.parametrize("case", ["one frame", "no pose at all"])
@pytest.mark.slow  # headless Chromium: kept out of the quick loop, run by CI
def test_degenerate_results_load_without_errors(browser, tmp_path, case):
    folder = tmp_path / "r"
    if case == "one frame":
        make_result(folder, num_frames=2)
        with np.load(folder / "keypoints.npz") as z:
            data = {k: z[k] for k in z.files}
        for k in ("keypoints_3d_world", "keypoints_3d_camera", "keypoints_2d", "scores_2d", "valid", "root_translation"):
            data[k] = data[k][:1]
        np.savez(folder / "keypoints.npz", **data)
    else:
        make_result(folder, num_frames=10, invalid=range(10))
        with np.load(folder / "keypoints.npz") as z:
            data = {k: z[k] for k in z.files}
        data["keypoints_3d_world"][:] = np.nan
        data["root_translation"][:] = np.nan
        np.savez(folder / "keypoints.npz", **data)
    open_page(browser, write_viewer(folder))
    n = browser.eval("video3d.numFrames()")
    assert n == (1 if case == "one frame" else 10)
    assert browser.eval(f"video3d.seek({n - 1})") == n - 1
    browser.eval("video3d.play()")
    if case == "no pose at all":
        assert browser.eval("video3d.pelvisScreen()") is None
        assert browser.eval("getComputedStyle(document.getElementById('badge')).display") == "block"
    assert browser.errors() == []
