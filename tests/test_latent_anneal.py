"""Annealed rounding of the chosen I-frame latent (latent_refine.anneal): the chain rule
through the relaxed rounding points downhill, the result lies on the coding grid, the
encoder keeps it only where the real cost drops (the stream it writes decodes to the
encoder's reconstruction: tests/test_latent_refine.py), and the setting is validated and
off in the realtime presets."""

from __future__ import annotations

import numpy as np
import pytest

from tests.clips import example_frames
from zvc69_rt.cli import build_parser
from zvc69_rt.codec import latent_refine
from zvc69_rt.codec.api import EncoderConfig
from zvc69_rt.codec.encoder import Encoder
from zvc69_rt.errors import InputError

W, H = 320, 136


class QuadraticPull:
    """A stand-in for the gradient graph: the cost sum((y - target)^2), cheapest on the grid
    at the integer offset nearest the target."""

    def __init__(self, target: np.ndarray):
        self.target = target
        self.seen: list[np.ndarray] = []

    def run(self, feeds: dict) -> dict:
        self.seen.append(feeds["y"])
        return {"grad": 2 * (feeds["y"] - self.target)}


def test_annealing_lands_on_the_grid_point_nearest_the_cost_minimum():
    rng = np.random.default_rng(3)
    shape = (1, 8, 6, 5)
    mean = rng.normal(0, 2, shape).astype(np.float32)
    # minima 0.1..0.35 from an integer offset, starts up to 1 away: plain rounding of the start
    # is often wrong, the nearest grid point to the minimum is unambiguous. (Annealing is a
    # local search: from 2 away a quarter stop one grid point short, as the relaxed rounding
    # hardens before they arrive; the encoder anneals from refined latents.)
    offset = rng.integers(-4, 5, shape) + rng.choice([-1, 1], shape) * rng.uniform(0.1, 0.35, shape)
    target = (mean + offset).astype(np.float32)
    y0 = (target + rng.uniform(-1, 1, shape)).astype(np.float32)
    pull = QuadraticPull(target)
    y = latent_refine._anneal(pull, y0[0], {"mean": mean}, 200, 0.05, np.random.default_rng(0))
    grid = np.round(target - mean) + mean
    assert len(pull.seen) == 200
    np.testing.assert_allclose(y - mean[0], np.round(y - mean[0]), atol=1e-5)  # on the coding grid
    assert np.mean(np.isclose(y, grid[0], atol=1e-4)) > 0.97
    assert np.mean(np.isclose(np.round(y0 - mean) + mean, grid, atol=1e-4)) < 0.7
    # the relaxed roundings it priced were between neighbouring grid points, not beyond them
    for seen in pull.seen:
        assert np.all(np.abs(seen - np.clip(seen, np.floor(seen - mean) + mean, np.ceil(seen - mean) + mean)) < 1e-5)


def test_annealing_is_seeded():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(1, 4, 3, 3)).astype(np.float32)
    target = rng.normal(0, 3, (1, 4, 3, 3)).astype(np.float32)
    y0 = target[0] + 0.5
    pulls = [QuadraticPull(target) for _ in range(3)]
    runs = [latent_refine._anneal(pull, y0, {"mean": mean}, 20, 0.05, np.random.default_rng(seed))
            for pull, seed in zip(pulls, (0, 0, 1), strict=True)]
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(pulls[0].seen[0], pulls[1].seen[0])
    assert not np.array_equal(pulls[0].seen[0], pulls[2].seen[0])  # the noise is the seed's


@pytest.fixture(scope="module")
def frame():
    return example_frames(1)[0]


def _encoder(anneal: int, **kw) -> Encoder:
    return Encoder(EncoderConfig(width=W, height=H, gop=1, quality=50, anneal_steps=anneal, **kw))


def test_encoder_keeps_the_annealed_latent_where_it_costs_less(frame):
    annealed, plain = _encoder(latent_refine.ANNEAL_STEPS), _encoder(0)
    assert annealed.anneal_steps == latent_refine.ANNEAL_STEPS and plain.anneal_steps == 0
    x = plain.preprocess(frame).x
    a, b = annealed.code_intra(x, 50), plain.code_intra(x, 50)
    assert a.cost < b.cost and a.data != b.data  # annealing pays on real footage at this quality
    assert annealed.code_intra(x, 50).data == a.data  # deterministic
    # never costlier: the annealed latent is a candidate, not a replacement
    for q in (0, 100):
        assert annealed.code_intra(x, q).cost <= plain.code_intra(x, q).cost


def test_annealed_latent_is_on_the_coding_grid(frame):
    enc = _encoder(latent_refine.ANNEAL_STEPS)
    x = enc._intra_picture(enc.preprocess(frame).x)
    lat = enc.intra.analyse(x, 50)
    weight = latent_refine.visible_weight(x.shape[1:], (H, W))
    out = latent_refine.anneal(enc.intra, x, lat, 50, weight, steps=10)
    mean, _ = latent_refine.entropy_parameters(enc.intra, lat)
    offset = out.y - mean
    np.testing.assert_allclose(offset, np.round(offset), atol=1e-4)
    assert out.z_hat is lat.z_hat and not np.array_equal(np.round(lat.y - mean), offset)
    assert latent_refine.anneal(enc.intra, x, lat, 50, weight, steps=0) is lat


def test_realtime_presets_and_the_cli_set_it():
    assert Encoder(EncoderConfig(width=W, height=H, gop=1, preset="realtime_1080p")).anneal_steps == 0
    args = build_parser().parse_args(["encode", "in.y4m", "-o", "out.zvc", "--anneal-steps", "7"])
    assert args.anneal_steps == 7
    assert build_parser().parse_args(["encode", "in.y4m", "-o", "out.zvc"]).anneal_steps == 0  # opt-in


@pytest.mark.parametrize("bad", [-1, 10_000, True, 2.5])
def test_config_refuses_bad_step_counts(bad):
    with pytest.raises(InputError, match="anneal_steps"):
        EncoderConfig(width=W, height=H, anneal_steps=bad).validate()


def test_image_evaluation_passes_the_setting_through():
    from zvc69_rt.eval import zvc69_adapter

    with pytest.raises(InputError, match="anneal_steps"):
        zvc69_adapter.image_codec(anneal_steps=-1)
    args = build_parser().parse_args(["eval", "images", "--out", "x", "--anneal-steps", "160"])
    assert args.anneal_steps == 160
