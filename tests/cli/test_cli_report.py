"""What a run tells its user: the weights and their tasks, per-image facts, DaAIR's own view of
the degradation, stage times and progress inside an image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from airtool.cli import app
from airtool.models import get_spec
from airtool.models.weights import save_weights

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "weights" / "manifest.json").read_text())["files"]


def _photo(path: Path, h: int = 40, w: int = 56, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_models_lists_each_weights_files_tasks_and_scores_from_the_manifest():
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    listed = {info["file"]: info for row in json.loads(result.stdout) for info in row["weights_files"]}
    assert set(listed) == set(MANIFEST)
    for name, entry in MANIFEST.items():
        info = listed[name]
        tasks = [t for t in ("noise", "rain", "haze", "blur", "lowlight") if t in {d["task"] for d in entry["data"]}]
        assert info["tasks"] == tasks and info["sha256"] == entry["sha256"]
        assert set(info["tasks"]) | set(info["untrained_tasks"]) == {"noise", "rain", "haze", "blur", "lowlight"}
        bench = entry["scores"]["promptir_3task"]
        assert info["scores"]["promptir_3task"] == bench[entry["model"]]
        assert info["input_scores"]["promptir_3task"] == bench["identity"]
    table = runner.invoke(app, ["models"], env={"COLUMNS": "200"})  # piped: plain columns
    assert "trained_for" in table.stdout and "blur,lowlight" in table.stdout


def test_summary_names_the_weights_and_their_tasks_and_each_line_what_ran(tmp_path):
    src = _photo(tmp_path / "in" / "a.png")
    _photo(tmp_path / "in" / "b.png", seed=1)
    args = ["restore", str(src.parent), str(tmp_path / "out"), "-m", "symunet-s", "--device", "cpu",
            "--precision", "fp32", "--tile", "32", "--tile-overlap", "8"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    *files, summary = _records(result.stdout)
    entry = MANIFEST["symunet-s-aio3.safetensors"]
    assert summary["weights"] == "symunet-s-aio3.safetensors" and summary["weights_sha256"] == entry["sha256"]
    assert summary["tasks"] == ["noise", "rain", "haze"] and summary["untrained_tasks"] == ["blur", "lowlight"]
    for record in files:
        assert record["model"] == "symunet-s" and record["weights_sha256"] == entry["sha256"]
        assert (record["precision"], record["tile"], record["device"]) == ("fp32", 32, "cpu")
        stages = record["decode_s"] + record["infer_s"] + record["write_s"]
        assert min(record["decode_s"], record["infer_s"], record["write_s"]) > 0
        assert record["seconds"] == pytest.approx(stages, abs=2e-3)
        assert "degradation" not in record  # SymUNet does not predict the degradation
    people = runner.invoke(app, [*args, "--overwrite"])
    assert people.exit_code == 0, people.output
    assert "with symunet-s (weights symunet-s-aio3.safetensors: trained for noise, rain, haze)" in people.stderr
    assert "not trained for" not in people.stderr and "lowlight" not in people.stderr  # no picture looked like it
    assert (summary["untrained_seen"], summary["untrained_kept"]) == ({}, 0)


def _dark_photo(path: Path, seed: int = 2) -> Path:
    """A low-light picture: a textured scene at a sixth of its brightness."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scene = np.kron(np.random.default_rng(seed).integers(0, 256, (12, 12, 3)), np.ones((8, 8, 1)))
    Image.fromarray((scene / 6).astype(np.uint8)).save(path)
    return path


def test_a_picture_that_looks_untrained_is_kept_with_a_note_and_the_summary_says_so(tmp_path):
    dark = _dark_photo(tmp_path / "in" / "dark.png")
    _photo(tmp_path / "in" / "plain.png", 96, 96)
    out = tmp_path / "out"
    args = ["restore", str(dark.parent), str(out), "-m", "symunet-s", "--device", "cpu", "--precision", "fp32"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    *files, summary = _records(result.stdout)
    by_name = {Path(r["input"]).name: r for r in files}
    note = by_name["dark.png"]["notes"][0]
    assert note.startswith("looks like lowlight (mean brightness") and "kept unchanged" in note
    assert (by_name["dark.png"]["untrained"], by_name["dark.png"]["untrained_signs"]) == ("kept", ["lowlight"])
    assert np.array_equal(np.asarray(Image.open(out / "dark.png")), np.asarray(Image.open(dark)))
    assert by_name["plain.png"]["notes"] == [] and "untrained" not in by_name["plain.png"]
    assert (summary["untrained_seen"], summary["untrained_kept"]) == ({"lowlight": 1}, 1)
    again = runner.invoke(app, [*args, "--untrained", "restore"])  # the kept output was made otherwise
    assert again.exit_code == 2 and "untrained keep" in again.stderr and "--overwrite" in again.stderr
    people = runner.invoke(app, [*args, "--untrained", "restore", "--overwrite"])
    assert people.exit_code == 0, people.output
    assert "restored anyway" in people.stderr and "note " in people.stderr
    assert ("; 1 picture looked like lowlight, which these weights were not trained for: restored anyway"
            in people.stderr)


def _daair_that_sees(tmp_path: Path, task: int) -> Path:
    """Tiny DaAIR weights whose every router is sure the degradation is ``task``."""
    torch.manual_seed(0)
    model = get_spec("daair").create("tiny")
    routers, labels = model.degradation_heads()
    with torch.no_grad():
        for router in routers:
            router.fc.weight.zero_()
            router.fc.bias.copy_(torch.tensor([4.0 if i == task else 0.0 for i in range(len(labels))]))
    path = tmp_path / "daair-tiny.safetensors"
    save_weights(model, path, model="daair", variant="tiny", config={})
    return path


def test_daair_reports_what_its_routers_saw_per_image_over_all_tiles(tmp_path):
    weights = _daair_that_sees(tmp_path, task=2)
    src = _photo(tmp_path / "in" / "a.png", 72, 88)
    result = runner.invoke(app, ["restore", str(src), str(tmp_path / "out.png"), "-m", "daair", "-w", str(weights),
                                 "--device", "cpu", "--tile", "32", "--tile-overlap", "8", "--json"])
    assert result.exit_code == 0, result.output
    report = _records(result.stdout)[0]["degradation"]
    assert report["predicted"] == "haze" and report["heads"] == 7  # 3 encoder + 1 latent + 3 decoder blocks
    expected = np.exp(4.0) / (np.exp(4.0) + 2)
    assert report["probabilities"]["haze"] == pytest.approx(expected, abs=1e-3)
    assert sum(report["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)


def test_shipped_daair_names_the_degradation_of_real_photos(shared_data, tmp_path):
    """Real rainy (Rain100L), hazy (SOTS) and noisy (CBSD68 + sigma 25) photos, 128 px crops."""
    rng = np.random.default_rng(0)
    cases = {
        "rain": next(iter(sorted((shared_data / "Rain100L" / "input").iterdir()))),
        "haze": next(iter(sorted((shared_data / "SOTS_outdoor_mini" / "input").iterdir()))),
        "noise": next(iter(sorted((shared_data / "CBSD68").iterdir()))),
    }
    folder = tmp_path / "in"
    folder.mkdir()
    for task, path in cases.items():
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)[:128, :128]
        if task == "noise":
            pixels = pixels + rng.normal(0, 25, pixels.shape)
        Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8)).save(folder / f"{task}.png")
    result = runner.invoke(app, ["restore", str(folder), str(tmp_path / "out"), "-m", "daair", "--json"])
    assert result.exit_code == 0, result.output
    seen = {Path(r["input"]).stem: r["degradation"]["predicted"] for r in _records(result.stdout)[:-1]}
    assert seen == {"rain": "rain", "haze": "haze", "noise": "noise"}


def test_progress_inside_an_image_is_counted_in_tiles(tmp_path):
    from airtool import api
    from airtool.io.tiling import grid
    from airtool.report import NullReporter

    class Recorder(NullReporter):
        def __init__(self):
            self.calls = []

        def tiles(self, name, done, total):
            self.calls.append((name, done, total))

    src = _photo(tmp_path / "a.png", 72, 88)
    recorder = Recorder()
    options = api.RestoreOptions(model="identity", tile=32, tile_overlap=8)
    assert api.restore([str(src)], str(tmp_path / "out"), options, recorder).exit_code == 0
    n = len(grid(72, 88, 32, 8))
    assert n > 4 and recorder.calls == [("a.png", i, n) for i in range(n + 1)]


def test_the_tile_bar_shows_on_a_terminal_only(tmp_path):
    import io

    from rich.console import Console

    from airtool.report import ConsoleReporter

    screen = io.StringIO()
    reporter = ConsoleReporter()
    reporter.console = Console(file=screen, force_terminal=True, width=100)
    reporter.start(2)
    reporter.tiles("big.jpg", 0, 24)
    reporter.tiles("big.jpg", 9, 24)
    tile_task = reporter.progress.tasks[1]
    assert (tile_task.completed, tile_task.total) == (9, 24) and "big.jpg (tiles)" in tile_task.description
    reporter.progress.refresh()
    assert "9/24" in screen.getvalue()
    reporter.tiles("next.jpg", 0, 6)  # a new image restarts the count
    assert (reporter.progress.tasks[1].completed, reporter.progress.tasks[1].total) == (0, 6)
    reporter.progress.stop()
    log = ConsoleReporter()
    log.console = Console(file=io.StringIO(), force_terminal=False)
    log.start(2)
    log.tiles("big.jpg", 9, 24)
    assert log.progress is None and log.console.file.getvalue() == ""
