"""``airtool train`` (run or resume a training run) and ``airtool train export``.

``train`` is a sub-command group whose callback trains when no sub-command is given, so both
``airtool train --config cpu-small`` and ``airtool train export RUN --out FILE`` work.
Nothing heavy is imported at module level (no torch, no numpy).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from airtool.cli import complete
from airtool.cli.common import fail

HELP = """Train a model from a YAML config (a shipped preset name or a file), or resume a run.

Each run lives in runs/<name>/: the resolved config.yaml, log.jsonl and the last two
checkpoints. --time-limit stops the run with a checkpoint once it has trained that long (the
same as --set train.time_limit_s=SECONDS); Ctrl-C or kill (SIGTERM) stops it between two steps
with a checkpoint too, and it exits 128 + the signal's number. --set train.cpu_ranks=N|auto
shares each step's batch among N one-thread processes on the CPU (auto: one per thread),
started under torchrun. Multi-GPU: torchrun --nproc-per-node N -m airtool train --config ...

Examples:

\b
  airtool train --list-configs
  airtool train --config cpu-small
  airtool train --config symunet-aio3 --set data.batch_size=2 --set train.steps=1000
  airtool train --config cpu-small --time-limit 2h
  airtool train --resume runs/cpu-small
  airtool train --config cpu-small --set data.root=/path/to/data
  airtool train export runs/cpu-small --out my-weights/cpu-small.safetensors

Training data is not shipped: the presets read ../shared/data (relative to the working
directory; the README's 'Training and benchmark data' lists the folders). Point at yours with
--set data.root=DIR or AIRTOOL_DATA=DIR.
"""

train_app = typer.Typer(name="train", help=HELP, invoke_without_command=True, rich_markup_mode=None)


@train_app.callback(invoke_without_command=True)
def train(
    ctx: typer.Context,
    config: Annotated[Optional[str], typer.Option("--config", "-c", metavar="NAME|FILE", help="Preset name (see --list-configs) or a YAML file.", autocompletion=complete.preset_names)] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", help="Override a config key: --set train.optim.lr=1e-4 (repeatable).")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", metavar="RUN", help="Continue a run (folder, or name under runs/) from its last good checkpoint.")] = None,
    list_configs: Annotated[bool, typer.Option("--list-configs", help="List the shipped presets and exit.")] = False,
    time_limit: Annotated[Optional[str], typer.Option("--time-limit", metavar="SECONDS|90m|2h", help="Stop with a checkpoint after training this long (train.time_limit_s).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Training events as JSON lines on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress; only errors and the final line.")] = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from airtool.errors import AirtoolError

    try:
        if list_configs:
            _list_configs()
            return
        overrides = [*(overrides or []), *_time_limit_override(time_limit)]
        ranks = _cpu_ranks(config, overrides, resume)
        if ranks > 1:
            raise typer.Exit(_launch(ranks, config, overrides, resume, json_out, quiet))
        result = _run(config, overrides, resume, json_out, quiet)
    except AirtoolError as err:
        fail(err)
    _done(result, json_out)
    _exit_if_stopped(result, f"airtool train --resume {shlex.quote(str(result.run))}")


def _time_limit_override(value: str | None) -> list[str]:
    """``--time-limit`` as the ``--set`` it stands for: seconds, or a number of minutes (m) or hours (h)."""
    if value is None:
        return []
    from airtool.errors import UsageError

    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    number, unit = (value[:-1], units[value[-1]]) if value[-1:] in units else (value, 1.0)
    try:
        seconds = float(number) * unit
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise UsageError(f"--time-limit {value!r}: give a positive number of seconds, or e.g. 90m or 2h")
    return [f"train.time_limit_s={seconds!r}"]


def _exit_if_stopped(result: Any, again: str) -> None:
    """A run that Ctrl-C or kill stopped exits 128 + the signal, as the shell would have, after
    one line saying its steps are kept and how to go on (``again``)."""
    if result.stopped_by is None:
        return
    if result.rank == 0:
        kept = f"checkpoint kept: {result.checkpoint}" if result.checkpoint else "no checkpoint written"
        typer.echo(f"airtool train: stopped by signal {result.stopped_by} at step {result.step}; {kept} "
                   f"(continue with: {again})", err=True)
    raise typer.Exit(128 + result.stopped_by)


def _cpu_ranks(config: str | None, overrides: list[str], resume: str | None) -> int:
    from airtool.api.train import cpu_ranks

    return cpu_ranks(config, overrides, resume=resume)


def _launch(ranks: int, config: str | None, overrides: list[str], resume: str | None, json_out: bool,
            quiet: bool) -> int:
    """This command again, as ``ranks`` one-thread DDP ranks under torchrun (engine/training/cpu_ranks.py)."""
    from airtool.api.train import launch_cpu_ranks

    argv = ["train", *(["--config", config] if config else []), *(["--resume", resume] if resume else [])]
    argv += [arg for item in overrides for arg in ("--set", item)]
    argv += ["--json"] * json_out + ["--quiet"] * quiet
    return launch_cpu_ranks(argv, ranks)


def _run(config: str | None, overrides: list[str], resume: str | None, json_out: bool, quiet: bool) -> Any:
    from airtool.api import train as run_train

    command = "airtool " + shlex.join(sys.argv[1:]) if sys.argv else ""
    with _Reporter(json_out, quiet) as report:
        return run_train(config, overrides, resume=resume, on_event=report, command=command)


def _list_configs() -> None:
    from airtool.api import presets

    for name, cfg in presets():
        model = f"{cfg.model.name}/{cfg.model.variant or 'default'}"
        what = f"{model}, {cfg.setting}, {cfg.train.steps} steps, crop {cfg.data.crop}, batch {cfg.data.batch_size}"
        typer.echo(f"{name:22s} {what}")


def _done(result: Any, json_out: bool) -> None:
    if result.rank != 0:
        return
    loss = "n/a" if result.loss is None else f"{result.loss:.5f}"
    line = (f"trained {result.run} to step {result.step} (loss {loss}); "
            f"export with: airtool train export {result.run} --out {Path(result.run).name}.safetensors")
    typer.echo(line, err=True)
    if json_out:
        import json

        typer.echo(json.dumps({"event": "result", "run": str(result.run), "step": result.step, "loss": result.loss,
                               "val": result.val, "checkpoint": str(result.checkpoint) if result.checkpoint else None,
                               "wall_time_s": result.wall_time_s, "stopped_by": result.stopped_by}))


class _Reporter:
    """Turns training events into a rich progress bar (stderr is a TTY), plain stderr lines for
    logs and validations (otherwise), and JSON lines on stdout with ``--json``."""

    def __init__(self, json_out: bool, quiet: bool) -> None:
        self.json_out, self.quiet = json_out, quiet
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> _Reporter:
        # Under torchrun only rank 0 reports (the others' events never come); a second live bar on
        # the same terminal would only fight it.
        if not self.quiet and sys.stderr.isatty() and os.environ.get("RANK", "0") == "0":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=Console(stderr=True))
            self.bar.start()
        return self

    def __call__(self, event: dict[str, Any]) -> None:
        import json

        kind = event.get("event")
        if self.json_out:
            typer.echo(json.dumps(event, sort_keys=True))
        if self.bar is not None:
            self._progress(kind, event)
        elif not self.quiet and kind in ("campaign", "start", "val", "resume", "checkpoint_skipped", "stopped", "done"):
            from airtool.report import one_line

            typer.echo(f"airtool train: {one_line(_describe(event))}", err=True)

    def _progress(self, kind: Any, event: dict[str, Any]) -> None:
        if kind == "start":
            self.task = self.bar.add_task("training", total=event["steps"], completed=event["step"])
            self.bar.console.print(_describe(event))
        elif kind == "step" and self.task is not None:
            self.bar.update(self.task, completed=event["step"], description=f"loss {event['loss']:.4f}")
        elif kind in ("campaign", "val", "resume", "checkpoint_skipped", "stopped"):
            self.bar.console.print(_describe(event))

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _describe(event: dict[str, Any]) -> str:
    kind = event.get("event")
    if kind == "val":
        return f"step {event['step']}: held-out PSNR {event['val_psnr']:.2f} dB, SSIM {event['val_ssim']:.4f}"
    if kind == "start":
        floor = f"; held-out inputs score {event['val_input_psnr']:.2f} dB" if "val_input_psnr" in event else ""
        return f"from step {event['step']} to {event['steps']} on {event['hardware']}{floor}"
    if kind == "resume":
        return f"resumed at step {event['step']} from {event['path']}"
    if kind == "checkpoint_skipped":
        return f"skipped damaged checkpoint: {event['reason']}"
    if kind == "campaign":
        return event["how"]
    if kind == "stopped":
        return f"stopped at step {event['step']} by signal {event['signal']}, with a checkpoint"
    return f"done at step {event.get('step')} in {event.get('seconds', 0):.0f} s"


CAMPAIGN_HELP = """Advance the SymUNet training campaign: one run, one learning-rate schedule.

Resumes runs/symunet-campaign exactly from its last checkpoint; where that folder is gone,
continues weights/symunet-aio3.safetensors at the step its manifest records, on the same
schedule. Stops with a checkpoint before --until (a time today, HH:MM, or an ISO date and time)
or after --hours, and on Ctrl-C or kill (SIGTERM). Run it from the repository root, niced:

\b
  nice -n 19 airtool train campaign --until 21:30 --quiet &
  airtool train campaign --hours 2.5
  airtool train export runs/symunet-campaign --out candidate/symunet-aio3.safetensors
"""


@train_app.command("campaign", help=CAMPAIGN_HELP)
def campaign(
    until: Annotated[Optional[str], typer.Option("--until", metavar="HH:MM|ISO", help="Stop (with a checkpoint) before this time.")] = None,
    hours: Annotated[Optional[float], typer.Option("--hours", min=0.0, help="Stop (with a checkpoint) after this many hours.")] = None,
    run: Annotated[Optional[str], typer.Option("--run", metavar="DIR", help="The campaign's run folder (default runs/symunet-campaign).")] = None,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="Weights to continue when the run folder is gone (default weights/symunet-aio3.safetensors).")] = None,
    config: Annotated[Optional[str], typer.Option("--config", "-c", metavar="NAME|FILE", help="The campaign preset (default symunet-campaign).")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", metavar="KEY=VALUE", help="Override a config key (repeatable).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Training events as JSON lines on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress; only errors and the final line.")] = False,
) -> None:
    from airtool.errors import AirtoolError

    try:
        stop_at = _deadline(until, hours)
        from airtool.api import campaign as run_campaign

        command = "airtool " + shlex.join(sys.argv[1:]) if sys.argv else ""
        with _Reporter(json_out, quiet) as report:
            result = run_campaign(list(overrides or []), preset=config, run=run, weights=weights, stop_at=stop_at,
                                  on_event=report, command=command)
    except AirtoolError as err:
        fail(err)
    _done(result, json_out)
    _exit_if_stopped(result, "airtool train campaign" + (f" --run {shlex.quote(run)}" if run else ""))


def _deadline(until: str | None, hours: float | None) -> float | None:
    """``--until`` / ``--hours`` as a ``time.time()`` value; HH:MM already past means tomorrow."""
    import datetime as dt
    import time

    from airtool.errors import UsageError

    if until is not None and hours is not None:
        raise UsageError("give --until or --hours, not both")
    if hours is not None:
        return time.time() + hours * 3600.0
    if until is None:
        return None
    now = dt.datetime.now().astimezone()
    try:
        clock = dt.time.fromisoformat(until)
        moment = now.replace(hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=0)
        moment += dt.timedelta(days=1) if moment <= now else dt.timedelta()
    except ValueError:
        try:
            moment = dt.datetime.fromisoformat(until)
        except ValueError:
            raise UsageError(f"--until {until!r}: give HH:MM or an ISO date and time") from None
        moment = moment if moment.tzinfo else moment.astimezone()
    return moment.timestamp()


@train_app.command("export")
def export(
    run: Annotated[str, typer.Argument(help="Run folder (or name under runs/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .safetensors file, e.g. weights/symunet-aio3.safetensors.")],
    raw: Annotated[bool, typer.Option("--no-ema", help="Export the raw weights instead of the EMA weights.")] = False,
    manifest: Annotated[Optional[Path], typer.Option("--manifest", metavar="FILE|DIR", help="Also add the file's entry (with its sha256) to this manifest JSON file, or to DIR/manifest.json.")] = None,
    dtype: Annotated[str, typer.Option("--dtype", help="Storage type of the weights: bf16, fp16 or fp32.")] = "bf16",
) -> None:
    """Write a run's EMA weights (inference part only) as safetensors, and nothing else: its
    manifest entry (data, steps, hardware, commands) goes inside the file's metadata, where
    'airtool models' and restore read it. --manifest also adds the entry to a manifest file."""
    from airtool.errors import AirtoolError

    try:
        from airtool.api import export as run_export

        command = "airtool " + shlex.join(sys.argv[1:]) if sys.argv else ""
        result = run_export(run, out, use_ema=not raw, dtype=dtype, manifest=manifest, command=command)
    except AirtoolError as err:
        fail(err)
    also = f"; entry added to {result.manifest}" if result.manifest else ""
    typer.echo(f"wrote {result.path} (step {result.step}, sha256 {result.sha256[:16]}…){also}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
