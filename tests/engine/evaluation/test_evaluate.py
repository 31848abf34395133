"""Evaluation: pairing, the papers' noise stream, protocol crops, suites, and real-data baselines."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from airtool.engine.evaluation import evaluate as E
from airtool.errors import UsageError


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture
def paired(tmp_path: Path) -> Path:
    """input/ + target/ with SOTS-like names: 0001.jpg <-> 0001.png, 0002_0.8_0.2.png <-> 0002.png."""
    rng = np.random.default_rng(0)
    for stem, in_name in (("0001", "0001.jpg"), ("0002", "0002_0.8_0.2.png"), ("0003", "0003.png")):
        target = rng.integers(0, 256, (35, 50, 3), dtype=np.uint8)
        _png(tmp_path / "set" / "target" / f"{stem}.png", target)
        _png(tmp_path / "set" / "input" / in_name, np.clip(target.astype(int) + 10, 0, 255).astype(np.uint8))
    _png(tmp_path / "set" / "input" / "orphan.png", np.zeros((35, 50, 3), np.uint8))
    return tmp_path / "set"


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    for name in ("b.png", "a.png", "c.png"):
        _png(tmp_path / "clean" / name, rng.integers(0, 256, (37, 41, 3), dtype=np.uint8))
    return tmp_path / "clean"


def test_pairs_by_stem_with_sots_fallback(paired):
    pairs = E.find_pairs(paired, None)
    assert [(p.name, p.input.name, p.target.name) for p in pairs] == [
        ("0001", "0001.jpg", "0001.png"), ("0002_0.8_0.2", "0002_0.8_0.2.png", "0002.png"), ("0003", "0003.png", "0003.png"),
    ]


def test_clean_folder_needs_a_noise_task(clean):
    with pytest.raises(UsageError, match="needs --task noise:SIGMA"):
        E.find_pairs(clean, E.parse_task("rain"))
    pairs = E.find_pairs(clean, E.parse_task("noise:25"))
    assert [p.name for p in pairs] == ["a", "b", "c"] and all(p.input is None for p in pairs)


@pytest.mark.parametrize("bad", ["noise", "noise:x", "noise:0", "rain:3", "snow"])
def test_bad_task_text(bad):
    with pytest.raises(UsageError, match="--task"):
        E.parse_task(bad)


def test_options_are_checked():
    with pytest.raises(UsageError, match="--protocol"):
        E.EvalOptions(model="identity", data=Path("x"), protocol="matlab")
    with pytest.raises(UsageError, match="either --data DIR or --suite"):
        E.EvalOptions(model="identity")
    with pytest.raises(UsageError, match="--limit"):
        E.EvalOptions(model="identity", data=Path("x"), limit=0)


def _promptir_reference(folder: Path, sigmas: list[float]) -> dict[float, list[np.ndarray]]:
    """The papers' recipe written out: seed 0 once, sorted files, crop to x16, then for each
    sigma uint8(clip(clean + sigma * randn, 0, 255)), the stream running on across sigmas."""
    np.random.seed(0)

    def crop16(im: np.ndarray) -> np.ndarray:
        h, w = im.shape[:2]
        dh, dw = h % 16, w % 16
        return im[dh // 2 : dh // 2 + h - dh, dw // 2 : dw // 2 + w - dw]

    images = [crop16(np.asarray(Image.open(p).convert("RGB"))) for p in sorted(folder.iterdir())]
    out = {}
    for sigma in sigmas:
        out[sigma] = [np.clip(im + np.random.randn(*im.shape) * sigma, 0, 255).astype(np.uint8) for im in images]
    return out


def test_promptir_noise_matches_the_papers_stream(clean):
    reference = _promptir_reference(clean, [15, 25, 50])
    protocol = E.PROTOCOLS["promptir"]
    for sigma in (15, 25, 50):  # each sigma alone reproduces its place in the one stream
        task = E.parse_task(f"noise:{sigma}")
        got = [deg for _, deg, _ in E.iter_inputs(E.find_pairs(clean, task), task, protocol)]
        for mine, ref in zip(got, reference[sigma], strict=True):
            assert mine.shape == (32, 32, 3)
            assert np.array_equal(np.round(mine * 255).astype(np.uint8), ref)


def test_ndr_noise_is_float_and_uncropped(clean):
    task = E.parse_task("noise:25")
    (_, degraded, target), *_ = E.iter_inputs(E.find_pairs(clean, task), task, E.PROTOCOLS["ndr"])
    assert degraded.shape == (37, 41, 3) == target.shape
    assert not np.allclose(degraded * 255, np.round(degraded * 255), atol=1e-3)


def test_symunet_crops_only_noise_sets(paired, clean):
    protocol = E.PROTOCOLS["symunet"]
    (_, deg, _), *_ = E.iter_inputs(E.find_pairs(paired, None), None, protocol)
    assert deg.shape == (35, 50, 3)
    task = E.parse_task("noise:15")
    (_, deg, _), *_ = E.iter_inputs(E.find_pairs(clean, task), task, protocol)
    assert deg.shape == (32, 32, 3)


def test_identity_on_pairs_and_saved_images(paired, tmp_path: Path):
    report = E.evaluate(E.EvalOptions(model="identity", data=paired, save_images=tmp_path / "out", device="cpu"))
    assert report.count == 3 and [r.name for r in report.rows] == ["0001", "0002_0.8_0.2", "0003"]
    saved = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert saved == ["0001.png", "0002_0.8_0.2.png", "0003.png"]
    row = report.rows[2]  # PNG pair: input = target + 10 levels (clipped), cropped to 32x48
    target = np.asarray(Image.open(paired / "target" / "0003.png"))[1:33, 1:49].astype(float)
    inp = np.clip(target + 10, 0, 255)
    assert row.psnr == pytest.approx(10 * math.log10(255**2 / np.mean((inp - target) ** 2)), abs=1e-4)
    assert report.psnr == pytest.approx(np.mean([r.psnr for r in report.rows]))


def test_suite_reports_missing_sets(tmp_path: Path, clean):
    import shutil

    shutil.copytree(clean, tmp_path / "root" / "CBSD68")
    (tmp_path / "root" / "GoPro_blur_sample").mkdir()
    report = E.run_suite(E.EvalOptions(model="identity", suite="5task", data_root=tmp_path / "root", device="cpu"))
    status = {(r.dataset, r.task): (r.report is not None, r.missing) for r in report.rows}
    assert status[("CBSD68", "noise:25")] == (True, None)
    assert "not found" in status[("SOTS_outdoor_mini", "haze")][1]
    assert "no input/target pairs" in status[("GoPro_blur_sample", "blur")][1]
    summary = report.summary()
    assert summary["count"] == 1 and len(summary["missing"]) == 4
    assert summary["psnr"] == pytest.approx(report.rows[2].report.psnr)


def test_missing_data_root_is_a_usage_error(tmp_path: Path):
    with pytest.raises(UsageError, match="data root .* not found"):
        E.data_root(tmp_path / "nope")


def test_real_cbsd68_noise_inputs_are_sorted_and_cropped_to_16(shared_data, tmp_path: Path):
    """Three CBSD68 photos (321x481 or 481x321) copied in reverse order: the papers' clean-folder
    protocol lists them sorted and crops each to its top-left 320x480 (or 480x320)."""
    paths = sorted((shared_data / "CBSD68").glob("*.png"))[:3]
    for p in reversed(paths):
        (tmp_path / p.name).write_bytes(p.read_bytes())
    task = E.parse_task("noise:25")
    rows = list(E.iter_inputs(E.find_pairs(tmp_path, task), task, E.PROTOCOLS["promptir"]))
    assert [pair.target.name for pair, _, _ in rows] == [p.name for p in paths]
    for pair, degraded, target in rows:
        clean = np.asarray(Image.open(pair.target).convert("RGB"))
        assert target.shape[:2] in ((320, 480), (480, 320)) and degraded.shape == target.shape
        assert np.array_equal(np.round(target * 255).astype(np.uint8), clean[: target.shape[0], : target.shape[1]])


def test_identity_on_real_rain100l_matches_an_independent_psnr(shared_data):
    """Three real Rain100L pairs: the input PSNR under the PromptIR protocol (top-left 480x320)."""
    root = shared_data
    report = E.evaluate(E.EvalOptions(model="identity", data=root / "Rain100L", limit=3, device="cpu"))
    assert [r.name for r in report.rows] == ["001", "002", "003"]
    for row in report.rows:
        inp = np.asarray(Image.open(root / "Rain100L" / "input" / f"{row.name}.png").convert("RGB"), np.float64)
        tgt = np.asarray(Image.open(root / "Rain100L" / "target" / f"{row.name}.png").convert("RGB"), np.float64)
        h, w = inp.shape[0] // 16 * 16, inp.shape[1] // 16 * 16
        mse = np.mean((inp[:h, :w] - tgt[:h, :w]) ** 2) / 255.0**2
        assert row.psnr == pytest.approx(10 * math.log10(1 / mse), abs=1e-4)
        assert 0 < row.ssim < 1
