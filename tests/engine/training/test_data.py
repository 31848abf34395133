"""Training data: pairing, per-sample determinism, resume offsets, crops/augmentation, noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from airtool.engine.training import data as D
from airtool.errors import ConfigError


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def make_train_data(root: Path, seed: int = 0) -> Path:
    """root/train/clean (5 RGB + 1 grey), root/train/paired/{input,target} (4 pairs, input = 0.8·target+20)."""
    rng = np.random.default_rng(seed)
    for i in range(5):
        _png(root / "train" / "clean" / f"c{i}.png", rng.integers(0, 256, (44, 52, 3), dtype=np.uint8))
    _png(root / "train" / "clean" / "g5.png", rng.integers(0, 256, (40, 40), dtype=np.uint8))
    for i in range(4):
        target = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        _png(root / "train" / "paired" / "target" / f"{i:03d}.png", target)
        _png(root / "train" / "paired" / "input" / f"{i:03d}.png", (target * 0.8 + 20).astype(np.uint8))
    return root


@pytest.fixture
def cfg(tmp_path: Path) -> D.DataConfig:
    root = make_train_data(tmp_path)
    return D.DataConfig(
        sources=(
            D.SourceConfig("train/clean", "noise", sigmas=(25.0,), holdout=1),
            D.SourceConfig("train/paired", "rain", paired=True, holdout=1),
        ),
        root=str(root), crop=16, batch_size=2, workers=0,
    )


def _batches(loader) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    return [tuple(t.clone() for t in b) for b in loader]


def test_batches_are_a_pure_function_of_seed_and_step(cfg):
    first = _batches(D.build_train_loader(cfg, 7, start_step=0, steps=3))
    again = _batches(D.build_train_loader(cfg, 7, start_step=0, steps=3))
    resumed = _batches(D.build_train_loader(cfg, 7, start_step=2, steps=1))
    other = _batches(D.build_train_loader(cfg, 8, start_step=0, steps=3))
    assert len(first) == 3 and first[0][0].shape == (2, 3, 16, 16) and first[0][2].dtype == torch.int64
    for a, b in zip(first, again, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(first[2], resumed[0], strict=True))  # resume at step 2 = same stream
    assert not torch.equal(first[0][1], other[0][1])


def test_worker_processes_give_the_same_batches(cfg):
    from dataclasses import replace

    inline = _batches(D.build_train_loader(cfg, 3, start_step=0, steps=2))
    workers = _batches(D.build_train_loader(replace(cfg, workers=1), 3, start_step=0, steps=2))
    assert all(torch.equal(x, y) for a, b in zip(inline, workers, strict=True) for x, y in zip(a, b, strict=True))


def test_distributed_ranks_split_the_same_global_stream(cfg):
    """With W ranks, rank r gets ids r, r+W, ...: together they cover the single-process ids."""
    single = D.MixtureDataset(D.build_sources(cfg)[0], cfg, 5, 0, 8)
    pytest.importorskip("torch.distributed")
    from torch.utils.data.distributed import DistributedSampler

    ids = [list(DistributedSampler(single, num_replicas=2, rank=r, shuffle=False, drop_last=True)) for r in (0, 1)]
    assert sorted(ids[0] + ids[1]) == list(range(8)) and ids[0][:2] == [0, 2]


def test_paired_crops_stay_aligned_and_labels_follow_the_task(cfg):
    from dataclasses import replace

    only_rain = replace(cfg, sources=(cfg.sources[1],), augment="promptir")
    ds = D.MixtureDataset(D.build_sources(only_rain)[0], only_rain, 0, 0, 6)
    for i in range(6):
        degraded, clean, label = ds[i]
        expected = np.floor(clean.numpy() * 255 * 0.8 + 20) / 255  # input = uint8(0.8·target + 20)
        assert np.allclose(degraded.numpy(), expected, atol=1.5 / 255)
        assert label == 1  # airtool.tasks: rain


def test_noise_is_promptir_uint8_and_grey_becomes_rgb(cfg):
    from dataclasses import replace

    only_noise = replace(cfg, sources=(cfg.sources[0],), augment="none")
    ds = D.MixtureDataset(D.build_sources(only_noise)[0], only_noise, 0, 0, 8)
    for i in range(8):
        degraded, clean, label = ds[i]
        levels = degraded.numpy() * 255
        assert np.allclose(levels, np.round(levels), atol=1e-3) and label == 0
        assert 15 < float((degraded - clean).std()) * 255 < 35  # sigma 25, clipped
        assert degraded.shape[0] == 3


def test_float_noise_is_not_quantised(cfg):
    from dataclasses import replace

    src = replace(cfg.sources[0], noise="float")
    rng = np.random.default_rng(0)
    out = D.degrade(np.full((16, 16, 3), 0.5, np.float32), src, rng)
    assert not np.allclose(out * 255, np.round(out * 255), atol=1e-3)


@pytest.mark.parametrize("task", ["rain", "haze", "blur", "lowlight"])
def test_on_the_fly_degradations_come_from_the_registry(cfg, task):
    from dataclasses import replace

    from airtool.degrade.registry import OPS

    src = replace(cfg.sources[0], task=task, preset="medium")
    clean = np.full((24, 24, 3), 0.5, np.float32)
    out = D.degrade(clean, src, np.random.default_rng(0))
    op = OPS[task]
    rng = np.random.default_rng(0)  # the same draws degrade() makes: sample, then apply
    chw = torch.from_numpy(clean.transpose(2, 0, 1).copy())
    expected = op.apply(chw, op.sample(rng, preset="medium"), rng=rng).numpy().transpose(1, 2, 0)
    assert out.shape == clean.shape and np.array_equal(out, expected) and not np.array_equal(out, clean)
    with pytest.raises(ConfigError, match="no such airtool.degrade op"):
        D.degrade(clean, replace(src, task="snow"), np.random.default_rng(0))


def test_augmentations():
    rng = np.random.default_rng(0)
    modes = {D.augment_mode("promptir", rng) for _ in range(200)}
    assert modes == set(range(1, 8))  # PromptIR never returns the identity
    img = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    outs = {D.apply_augment(img, m).tobytes() for m in range(8)}
    assert len(outs) == 8  # the eight flips/rotations are distinct
    assert D.apply_augment(img, (True, False, False))[0, 0, 0] == img[0, 1, 0]
    assert D.augment_mode("none", rng) == 0


def test_small_images_are_reflect_padded_to_the_crop():
    rng = np.random.default_rng(0)
    a = np.zeros((10, 12, 3), np.float32)
    out = D.random_crop([a, a + 1], 16, rng)
    assert out[0].shape == (16, 16, 3) and np.all(out[1] == 1)


def test_holdout_files_feed_validation_only(cfg):
    train, held = D.build_sources(cfg)
    assert len(train[0].files) == 5 and [p.name for p, _ in held[0].files] == ["g5.png"]
    assert [p.name for p, _ in held[1].files] == ["003.png"]
    samples = D.build_val_samples(cfg, D.ValConfig(crop=16, limit=8), 0)
    assert [s[2] for s in samples] == [0, 1]  # round-robin over the sources
    again = D.build_val_samples(cfg, D.ValConfig(crop=16, limit=8), 0)
    assert torch.equal(samples[0][0], again[0][0])


def test_config_errors(cfg, tmp_path: Path):
    from dataclasses import replace

    bench = tmp_path / "Rain100L"
    (bench / "input").mkdir(parents=True)
    with pytest.raises(ConfigError, match="evaluation set; never train on it"):
        D.build_sources(replace(cfg, sources=(D.SourceConfig(str(bench), "rain", paired=True),)))
    with pytest.raises(ConfigError, match="different holdout"):
        D.build_sources(replace(cfg, sources=(cfg.sources[0], replace(cfg.sources[0], task="haze", holdout=0))))
    with pytest.raises(ConfigError, match="data folder not found"):
        D.build_sources(replace(cfg, sources=(D.SourceConfig("nowhere", "noise"),)))
    with pytest.raises(ConfigError, match="holdout is 9"):
        D.build_sources(replace(cfg, sources=(replace(cfg.sources[1], holdout=9),)))


def test_decoded_cache_gives_exactly_what_read_rgb_gives(tmp_path):
    from PIL import Image

    from airtool.engine.training.data import DecodedCache, read_rgb

    rng = np.random.default_rng(0)
    files = {"rgb.png": rng.integers(0, 256, (9, 7, 3), dtype=np.uint8), "grey.png": rng.integers(0, 256, (5, 6), dtype=np.uint8),
             "rgb16.png": rng.integers(0, 65536, (4, 5), dtype=np.uint16)}
    for name, arr in files.items():
        Image.fromarray(arr).save(tmp_path / name)
    cache = DecodedCache(limit_mb=1)
    for name in files:
        first, again = cache.read(tmp_path / name), cache.read(tmp_path / name)
        expected = read_rgb(tmp_path / name)
        assert first.dtype == np.float32 and first.shape == expected.shape
        assert np.array_equal(first, expected) and np.array_equal(again, expected)
    assert cache.images[tmp_path / "rgb.png"][0].dtype == np.uint8  # 8-bit kept as levels
    assert cache.images[tmp_path / "grey.png"][0].shape[2] == 1  # grey kept with one channel


def test_decoded_cache_stops_keeping_images_at_its_limit(tmp_path):
    from PIL import Image

    from airtool.engine.training.data import DecodedCache

    Image.fromarray(np.zeros((600, 600, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    cache = DecodedCache(limit_mb=1)  # the image needs 1.03 MiB
    assert cache.read(tmp_path / "big.png").shape == (600, 600, 3)
    assert cache.images == {} and cache.used == 0


def test_the_presets_data_root_gives_way_to_airtool_data_and_a_missing_folder_says_how_to_point_at_data(
        tmp_path, monkeypatch):
    root = make_train_data(tmp_path / "elsewhere")
    sources = (D.SourceConfig("train/clean", "noise", sigmas=(25.0,)),)
    monkeypatch.chdir(tmp_path)  # ../shared/data does not exist from here
    monkeypatch.delenv("AIRTOOL_DATA", raising=False)
    with pytest.raises(ConfigError) as missing:
        D.build_sources(D.DataConfig(sources=sources))
    assert "data folder not found" in str(missing.value)
    assert "--set data.root=DIR or AIRTOOL_DATA=DIR" in str(missing.value) and "README" in str(missing.value)
    monkeypatch.setenv("AIRTOOL_DATA", str(root))
    train, _ = D.build_sources(D.DataConfig(sources=sources))  # the default root: $AIRTOOL_DATA
    assert len(train[0].files) == 6 and train[0].files[0][0].is_relative_to(root)
    with pytest.raises(ConfigError, match="nowhere/train/clean: data folder not found"):
        D.build_sources(D.DataConfig(sources=sources, root=str(tmp_path / "nowhere")))  # an explicit root wins


def _haze_source(tmp_path: Path, height: int = 96) -> tuple[D.DataConfig, D.Source, np.ndarray]:
    """A clean folder of two images; the held-out one is smooth and photo-like (bright sky fading
    to a dark, textured ground). Returns the config, the held-out source and that image."""
    rows = np.linspace(1.0, 0.2, height, dtype=np.float32)[:, None, None]
    texture = np.random.default_rng(3).uniform(-0.05, 0.05, (height, 80, 3)).astype(np.float32)
    img = np.round(np.clip(rows * np.array([0.8, 0.9, 1.0], np.float32) + texture, 0, 1) * 255).astype(np.uint8)
    _png(tmp_path / "train" / "hazy" / "a.png", img[::-1].copy())  # trained on
    _png(tmp_path / "train" / "hazy" / "b.png", img)  # held out (the last file)
    cfg = D.DataConfig(sources=(D.SourceConfig("train/hazy", "haze", preset="medium", holdout=1),),
                       root=str(tmp_path), crop=16, batch_size=1, workers=0)
    _, held = D.build_sources(cfg)
    return cfg, held[0], img.astype(np.float32) / 255


def test_haze_crops_take_their_depth_from_the_whole_image(tmp_path):
    """A crop's own depth estimate spans near..far in every window; the scene's does not."""
    from airtool.degrade import haze

    _, src, img = _haze_source(tmp_path)
    whole, scene = src.with_scene(0, [img], None)
    assert whole is img and scene.shape == (96, 80, 1)
    assert np.allclose(scene, D.scene_map("haze", img))
    top = 40
    window = scene[top : top + 16, 30:46]
    crop_alone = haze.depth_map(torch.from_numpy(img[top : top + 16, 30:46].transpose(2, 0, 1).copy())[None], "auto")
    assert float(window.max() - window.min()) < 0.4 < float(crop_alone.max() - crop_alone.min())
    cache = D.DecodedCache(limit_mb=16)
    assert np.array_equal(cache.scene(src.files[0][0], "haze", img), scene) and cache.scenes


def test_held_out_haze_is_the_centre_of_the_whole_hazed_image(tmp_path):
    from airtool.degrade import haze

    cfg, _, img = _haze_source(tmp_path)
    degraded, clean, _ = D.build_val_samples(cfg, D.ValConfig(crop=16, limit=1), seed=5)[0]
    params = haze.sample(np.random.default_rng([5, 1, 0]), preset="medium")  # the draws make() takes
    hazed = haze.apply(torch.from_numpy(img.transpose(2, 0, 1).copy()), params).numpy().transpose(1, 2, 0)
    expected = D.center_crop(hazed, 16)
    assert np.allclose(degraded.numpy().transpose(1, 2, 0), expected, atol=1e-6)
    assert np.array_equal(clean.numpy().transpose(1, 2, 0), D.center_crop(img, 16))


def test_only_clean_sources_of_scene_wide_degradations_carry_a_scene_map(cfg):
    assert D.has_scene_map("haze") and not any(D.has_scene_map(t) for t in ("noise", "rain", "blur", "lowlight"))
    train, _ = D.build_sources(cfg)
    img = np.zeros((8, 8, 3), np.float32)
    assert all(len(s.with_scene(0, [img], None)) == 1 for s in train)


def test_the_balance_preset_hazes_within_reside_ots_range():
    from airtool.engine.training.config import load_train_config

    cfg = load_train_config("daair-cpu-aio3-cont-balance")
    hazy = [s for s in cfg.data.sources if s.task == "haze"]
    assert hazy and all(s.preset == ("light", "medium") for s in hazy)
