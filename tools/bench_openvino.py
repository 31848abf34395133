"""SymUNet on OpenVINO's CPU runtime against airtool's own fp32 path, on the same input.

Usage (repo root, venv active; ``pip install openvino``, which airtool does not depend on):

    python -m tools.bench_openvino --size 256 --threads 1 --repeats 3 \
        [--weights weights/symunet-aio3.safetensors] [--source reference|airtool]

An optional ``--backend openvino`` was to be built only if it were at least 1.5× faster at equal
output (it was not: docs/history.md#inference). This converts SymUNet with ``openvino.convert_model`` (from the authors'
transcription, ``--source reference``, or from airtool's own module, ``--source airtool``),
compiles it for the CPU in fp32 with the latency hint and ``--threads`` threads, and times it
interleaved with ``Restorer.forward_batch`` (fp32). Prints one JSON line: the medians, the
conversion time, ``speedup_openvino`` (airtool ms / OpenVINO ms; above 1 means OpenVINO wins)
and the max |difference| of each to the reference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from airtool.models import blocks
from tools.bench_reference import build


def compile_openvino(module: torch.nn.Module, example: torch.Tensor, threads: int):
    try:
        import openvino as ov
    except ImportError:
        raise SystemExit("openvino is not installed: pip install openvino") from None
    with torch.no_grad(), blocks.whole_tensors():  # trace the plain whole-tensor graph
        model = ov.convert_model(module, example_input=example)
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
    return lambda x: torch.from_numpy(request.infer({0: x.numpy()})[0].copy())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weights", help="SymUNet weights; default: random, seed 0")
    parser.add_argument("--source", choices=("reference", "airtool"), default="reference",
                        help="which PyTorch module OpenVINO converts")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    reference, fast = build(args.weights)
    airtool_fp32 = fast["fp32"]
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    source = reference if args.source == "reference" else airtool_fp32.model.float()
    run_openvino = compile_openvino(source, x, args.threads)
    convert_s = time.perf_counter() - start
    runs = {"openvino": lambda: run_openvino(x), "airtool": lambda: airtool_fp32.forward_batch(x)}
    with torch.no_grad():
        expected = reference(x)
        diffs = {k: float((f() - expected).abs().max()) for k, f in runs.items()}
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                t = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t)
    ms = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(json.dumps({
        "size": args.size, "threads": args.threads, "source": args.source, "convert_s": round(convert_s, 1),
        "ms_openvino": round(ms["openvino"], 1), "ms_airtool_fp32": round(ms["airtool"], 1),
        "speedup_openvino": round(ms["airtool"] / ms["openvino"], 3),
        "max_diff_openvino": diffs["openvino"], "max_diff_airtool": diffs["airtool"],
    }))


if __name__ == "__main__":
    main()
