"""The provenance record of an output folder: what made each output, through interruptions."""

from __future__ import annotations

import dataclasses

from airtool.io.atomic import write_bytes
from airtool.io.provenance import FILE_NAME, Provenance, Recipe

DAAIR = Recipe(model="daair", weights_sha256="13" * 32, variant=None, precision="auto", tile="auto", tile_overlap=32,
               quality=95, weights="daair-aio3.safetensors")
SMALL = dataclasses.replace(DAAIR, model="symunet-s", weights_sha256="6b" * 32, weights="symunet-s-aio3.safetensors")


def _write(prov: Provenance, dst, data: bytes, recipe: Recipe) -> None:
    write_bytes(dst, data, lambda tmp: prov.record(tmp, dst, recipe))


def test_each_output_is_attributed_to_the_recipe_that_wrote_it(tmp_path):
    prov = Provenance(tmp_path)
    (tmp_path / "sub").mkdir()
    _write(prov, tmp_path / "a.png", b"first", DAAIR)
    _write(prov, tmp_path / "sub" / "b.png", b"second", SMALL)
    made = Provenance(tmp_path).made_by([tmp_path / "a.png", tmp_path / "sub" / "b.png", tmp_path / "none.png"])
    assert made == {tmp_path / "a.png": DAAIR, tmp_path / "sub" / "b.png": SMALL}
    _write(prov, tmp_path / "a.png", b"first, again", SMALL)  # overwritten by another recipe
    assert Provenance(tmp_path).made_by([tmp_path / "a.png"]) == {tmp_path / "a.png": SMALL}


def test_killed_between_the_record_and_the_rename_keeps_the_old_attribution(tmp_path):
    prov = Provenance(tmp_path)
    dst = tmp_path / "a.png"
    _write(prov, dst, b"made by daair", DAAIR)

    class Killed(BaseException):
        pass

    def record_then_die(tmp):
        prov.record(tmp, dst, SMALL)
        raise Killed

    try:
        write_bytes(dst, b"made by symunet-s", record_then_die)
    except Killed:
        pass
    assert dst.read_bytes() == b"made by daair"
    assert Provenance(tmp_path).made_by([dst]) == {dst: DAAIR}


def test_an_output_changed_by_hand_has_no_recipe(tmp_path):
    prov = Provenance(tmp_path)
    dst = tmp_path / "a.png"
    _write(prov, dst, b"restored", DAAIR)
    dst.write_bytes(b"retouched by hand, longer")
    assert Provenance(tmp_path).made_by([dst]) == {}


def test_a_line_cut_short_is_ignored_and_does_not_swallow_the_next(tmp_path):
    prov = Provenance(tmp_path)
    _write(prov, tmp_path / "a.png", b"one", DAAIR)
    with open(tmp_path / FILE_NAME, "ab") as fh:
        fh.write(b'\n{"output": "b.png", "recipe": "12')  # a disk that filled up mid-line
    _write(Provenance(tmp_path), tmp_path / "c.png", b"three", SMALL)
    made = Provenance(tmp_path).made_by([tmp_path / n for n in ("a.png", "c.png")])
    assert made == {tmp_path / "a.png": DAAIR, tmp_path / "c.png": SMALL}


def test_recipes_compare_what_decides_the_pixels_not_the_file_name():
    renamed = dataclasses.replace(DAAIR, weights="copy-of-daair.safetensors")
    assert renamed.id == DAAIR.id
    assert dataclasses.replace(DAAIR, tile=256).id != DAAIR.id
    assert DAAIR.differences(SMALL) == [
        ("model", "daair", "symunet-s"),
        ("weights", f"daair-aio3.safetensors (sha256 {'13' * 6})", f"symunet-s-aio3.safetensors (sha256 {'6b' * 6})"),
    ]
