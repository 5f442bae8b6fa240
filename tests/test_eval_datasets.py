"""Held-out split, loaders and synthetic camera motion."""

import numpy as np
import pytest

from zvc69_rt.codec.motion_search import bilinear_sample
from zvc69_rt.errors import InputError
from zvc69_rt.eval import datasets as ds
from zvc69_rt.eval.color import frame_to_rgb, rgb_to_frame
from zvc69_rt.eval.metrics import psnr


def test_split_is_disjoint_and_holds_out_the_eval_data():
    assert not set(ds.EVAL_SKIMAGE) & set(ds.TRAIN_SKIMAGE)
    assert "motorcycle_left" not in ds.TRAIN_SKIMAGE  # stereo twin of the eval photo
    assert not set(ds.EVAL_WALLPAPERS) & set(ds.TRAIN_WALLPAPER_PHOTOS)
    assert set(ds.EVAL_WALLPAPERS) == {"Kite", "Path", "ColdRipple"}
    assert not set(ds.EVAL_VIDEOS) & set(ds.TRAIN_VIDEOS)
    for name, _ in ds.list_wallpapers("train"):
        assert name not in ds.EVAL_WALLPAPERS
    for name in ds.TRAIN_SKIMAGE:
        assert ds.skimage_image_path(name).is_file()


def test_load_image_fits_max_size_and_even_dims():
    img = ds.load_image(ds.skimage_image_path("motorcycle_right"), max_size=101)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert max(img.shape[:2]) <= 101 and img.shape[0] % 2 == 0 and img.shape[1] % 2 == 0
    with pytest.raises(InputError, match="does not exist"):
        ds.load_image("/nonexistent.png")


def test_eval_images_and_wallpapers():
    imgs = dict(ds.eval_images(max_size=64))
    assert "motorcycle_right" in imgs
    installed = ds.list_wallpapers("eval")
    assert set(imgs) == {"motorcycle_right"} | {n for n, _ in installed}
    if not installed:
        pytest.skip("plasma-workspace-wallpapers not installed")
    assert ds.wallpaper_path("Kite").name == "2560x1600.jpg"
    with pytest.raises(InputError, match="unknown"):
        ds.eval_images(64, names=["astronaut"])


def test_load_bikes_clip_capped_and_resized():
    frames = ds.load_video(ds.video_path("bikes.mp4"), max_frames=3, max_size=320)
    assert len(frames) == 3 and [f.pts for f in frames] == [0, 1, 2]
    assert (frames[0].width, frames[0].height) == (320, 136)
    for f in frames:
        f.validate()
    assert not np.array_equal(frames[0].y, frames[2].y)  # real motion, not a still


def test_color_round_trip():
    gray = np.repeat(np.arange(0, 256, 2, dtype=np.uint8)[None, :, None], 9, axis=0).repeat(3, axis=2)
    f = rgb_to_frame(gray)
    assert (f.width, f.height) == (128, 9) and f.u.shape == (5, 64)
    assert np.all(f.u == 128) and np.array_equal(frame_to_rgb(f), gray)
    smooth = ds.load_image(ds.skimage_image_path("motorcycle_right"), max_size=64)
    assert psnr(smooth, frame_to_rgb(rgb_to_frame(smooth))) > 25


def _warp_prev(prev_rgb, cam_prev, cam_next, shape):
    """Predict the next frame from the previous one with the ground-truth camera maps."""
    h, w = shape
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
    # photo coords of next-frame pixels, expressed in prev-frame pixel coords
    x = (cam_next["a"] * uu + cam_next["tx"] - cam_prev["tx"]) / cam_prev["a"]
    y = (cam_next["a"] * vv + cam_next["ty"] - cam_prev["ty"]) / cam_prev["a"]
    ok = (x >= 0) & (y >= 0) & (x <= w - 1) & (y <= h - 1)
    return bilinear_sample(prev_rgb.astype(np.float64), y, x), ok


@pytest.mark.parametrize("motion", ["pan", "zoom", "panzoom"])
def test_synthetic_motion_ground_truth_predicts_next_frame(motion):
    photo = ds.load_image(ds.skimage_image_path("motorcycle_right"), max_size=320)
    clip = ds.synthetic_camera_clip(photo, num_frames=3, size=(96, 64), motion=motion, speed=2.0, seed=3)
    assert len(clip) == 3 and [f.pts for f in clip] == [0, 1, 2]
    rgb = [frame_to_rgb(f).astype(np.float64) for f in clip]
    pred, ok = _warp_prev(rgb[0], clip[0].meta["camera"], clip[1].meta["camera"], (64, 96))
    err_mc = np.mean((pred - rgb[1])[ok] ** 2)
    err_static = np.mean((rgb[0] - rgb[1])[ok] ** 2)
    assert ok.mean() > 0.8
    assert err_mc < 0.25 * err_static


def test_synthetic_clip_errors():
    photo = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(InputError, match="leaves"):
        ds.synthetic_camera_clip(photo, num_frames=50, size=(90, 90), motion="pan", speed=5)
    with pytest.raises(InputError, match="motion"):
        ds.synthetic_camera_clip(photo, motion="spin")
    with pytest.raises(InputError, match="even"):
        ds.synthetic_camera_clip(photo, size=(33, 20))


def test_extended_clips_keep_the_three_and_add_other_held_out_content():
    base = ds.eval_clips(num_frames=2, max_size=96)
    ext = ds.eval_clips(num_frames=2, max_size=96, extended=True)
    names = [n for n, _ in ext]
    walls = [n for n, _ in ds.list_wallpapers("eval")]
    motions = ["pan", "zoom", "panzoom", "pan"]
    photos = ["motorcycle_right"] + walls
    assert names == ["bikes", "bikes@80", "bikes@160"] + [f"{p}-{m}" for p, m in zip(photos, motions)]
    by_name = dict(ext)
    for name, frames in base:  # the docs/rd clips are unchanged inside the extended set
        for a, b in zip(frames, by_name[name], strict=True):
            np.testing.assert_array_equal(a.y, b.y)
    assert len(set(names)) == len(names)
    firsts = [f[0].y for _, f in ext]
    for i in range(len(firsts)):
        for j in range(i):
            assert not np.array_equal(firsts[i], firsts[j]), (names[i], names[j])
