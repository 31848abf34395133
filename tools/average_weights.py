"""Interpolate two weights files of one model: (1 - t) · A + t · B, tensor by tensor.

Usage (repo root, venv active):

    python -m tools.average_weights weights/daair-aio3.safetensors runs/cand/daair-aio3.safetensors \
        --t 0.5 --out runs/soup/daair-aio3.safetensors

Weight interpolation between a model and its fine-tuned continuation (WiSE-FT, Wortsman et al.
2022) keeps part of what each learned: here, the shipped DaAIR's dehazing and its continuation's
deraining. Both files must hold the same keys and shapes (checked strictly, by the loader's own
check); the result keeps B's metadata (model, variant, config) plus a note naming A, B and t.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def average(a: Path, b: Path, t: float, out: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from airtool.io.atomic import atomic_path
    from airtool.models.weights import load_state_check, sha256_of

    first, second = load_file(str(a)), load_file(str(b))
    load_state_check(second, first, str(a))
    with safe_open(str(b), "pt") as f:
        meta = dict(f.metadata() or {})
    meta["airtool_interpolated"] = f"(1 - {t}) * {a.name} (sha256 {sha256_of(a)[:16]}) + {t} * {b.name} (sha256 {sha256_of(b)[:16]})"
    mixed = {k: ((1 - t) * first[k].float() + t * v.float()).to(v.dtype) if v.is_floating_point() else v
             for k, v in second.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        save_file(mixed, str(tmp), metadata=meta)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--t", type=float, default=0.5, help="weight of B (0: A, 1: B)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    average(args.a, args.b, args.t, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
