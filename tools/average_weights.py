"""Interpolate two weights files of one model: (1 - t) · A + t · B, tensor by tensor.

Usage (repo root, venv active):

    python -m tools.average_weights weights/daair-aio3.safetensors runs/cand/daair-aio3.safetensors \
        --t 0.5 --out runs/soup/daair-aio3.safetensors

Weight interpolation between a model and its fine-tuned continuation (WiSE-FT, Wortsman et al.
2022) keeps part of what each learned: here, the shipped DaAIR's dehazing and its continuation's
deraining. Both files must hold the same keys and shapes (checked strictly, by the loader's own
check); the result keeps B's metadata (model, variant, config) plus a note naming A, B and t.

``--mean`` takes the uniform mean of two or more files instead, such as snapshots exported along one
training run (stochastic weight averaging, Izmailov et al. 2018: the mean of weights visited at a
constant learning rate sits nearer the middle of the basin than any one of them):

    python -m tools.average_weights --mean runs/snapshots/step-*.safetensors --dtype bf16 \
        --out runs/swa/symunet-aio3.safetensors

The mean keeps the last file's metadata (its step and recipe) plus a note naming every file.
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


def mean(files: list[Path], out: Path, dtype: str | None = None) -> None:
    """The uniform mean of ``files`` (same keys and shapes, checked strictly), stored as ``dtype``
    (bf16, fp16, fp32; default: the last file's types), with the last file's metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from airtool.io.atomic import atomic_path
    from airtool.models.weights import load_state_check, sha256_of
    from airtool.precision import dtype_of

    last = load_file(str(files[-1]))
    total = {k: v.double() for k, v in last.items() if v.is_floating_point()}
    for path in files[:-1]:
        state = load_file(str(path))
        load_state_check(last, state, str(path))
        for key in total:
            total[key] += state[key].double()
    target = dtype_of(dtype) if dtype else None
    averaged = {k: (total[k] / len(files)).to(target or v.dtype) if k in total else v for k, v in last.items()}
    with safe_open(str(files[-1]), "pt") as f:
        meta = dict(f.metadata() or {})
    meta["airtool_mean_of"] = ", ".join(f"{p.name} (sha256 {sha256_of(p)[:16]})" for p in files)
    if target is not None:
        meta["airtool_dtype"] = dtype
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        save_file(averaged, str(tmp), metadata=meta)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+", help="A and B, or with --mean two or more files")
    parser.add_argument("--t", type=float, default=0.5, help="weight of B (0: A, 1: B)")
    parser.add_argument("--mean", action="store_true", help="the uniform mean of all the files")
    parser.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), help="with --mean: storage type")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.mean and len(args.files) >= 2:
        mean(args.files, args.out, args.dtype)
    elif not args.mean and len(args.files) == 2:
        average(args.files[0], args.files[1], args.t, args.out)
    else:
        parser.error("give A and B, or --mean and two or more files")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
