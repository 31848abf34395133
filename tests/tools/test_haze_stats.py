"""tools/haze_stats.py: the fitted atmospheric light and transmission of a hazy/clear pair."""

from __future__ import annotations

import numpy as np

from tools.haze_stats import fit_transmission, psnr


def test_fit_recovers_the_light_and_transmission_of_a_synthetic_pair():
    rng = np.random.default_rng(0)
    clear = rng.uniform(0.0, 0.6, (40, 50, 3)).astype(np.float32)
    t = np.linspace(0.55, 0.85, 50, dtype=np.float32)[None, :, None]
    hazy = clear * t + 0.9 * (1 - t)
    light, fitted = fit_transmission(hazy, clear)
    assert abs(light - 0.9) < 0.011
    assert np.percentile(fitted, 5) > 0.54 and np.percentile(fitted, 95) < 0.86
    assert psnr(hazy, clear) < psnr(clear + 0.01, clear)
