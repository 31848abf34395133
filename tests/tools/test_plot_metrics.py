"""The validation-curve picture is drawn from a run's metrics.csv."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tools import plot_metrics as P

CSV = """event,step,loss,lr,samples_per_s,val_psnr,val_ssim,val_psnr_noise,val_psnr_rain,val_psnr_haze,val_psnr_blur,val_psnr_lowlight
step,25,0.2,0.001,1.0,,,,,,,
val,50,,,,24.0,0.8,26.0,23.0,20.0,,
val,100,,,,25.0,0.8,27.0,24.0,21.0,,
"""


def test_curves_come_from_the_validation_rows_only(tmp_path: Path):
    (tmp_path / "m.csv").write_text(CSV)
    curves = P.read_curves([tmp_path / "m.csv"])
    assert curves == {"val_psnr": [(50, 24.0), (100, 25.0)], "val_psnr_noise": [(50, 26.0), (100, 27.0)],
                      "val_psnr_rain": [(50, 23.0), (100, 24.0)], "val_psnr_haze": [(50, 20.0), (100, 21.0)]}
    P.main([str(tmp_path / "m.csv"), "--out", str(tmp_path / "c.png")])
    im = Image.open(tmp_path / "c.png")
    assert im.size == (P.WIDTH, P.HEIGHT) and len(im.convert("RGB").getcolors(maxcolors=1 << 24)) > 4  # lines in colour


def test_a_csv_without_validation_rows_is_one_line(tmp_path: Path):
    (tmp_path / "m.csv").write_text(CSV.splitlines()[0] + "\nstep,25,0.2,0.001,1.0,,,,,,,\n")
    with pytest.raises(SystemExit, match="no validation rows"):
        P.main([str(tmp_path / "m.csv"), "--out", str(tmp_path / "c.png")])
