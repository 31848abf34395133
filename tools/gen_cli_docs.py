"""Generate completions/ (bash, zsh, fish) and man/airtool.1 from the Typer app.

Run after changing the CLI:  python -m tools.gen_cli_docs
tests/cli/test_cli_docs.py fails when the committed files drift from what this writes.
(click-man writes empty option sections for Typer >= 0.26, so the roff is generated here.)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHELLS = {"bash": "airtool.bash", "zsh": "_airtool", "fish": "airtool.fish"}

SECTIONS_AFTER = r""".SH EXIT STATUS
.TP
.B 0
All done; outputs that already existed and were skipped count as done.
.TP
.B 1
Fatal error: model, weights or device.
.TP
.B 2
Usage error: bad options, a plan that would overwrite an input, or existing outputs made by
another model, weights or options (\fB\-\-overwrite\fR redoes them).
.TP
.B 3
Some inputs failed (one line each on stderr); all other outputs were written.
.TP
.B 130
Interrupted; finished outputs stay, and running the same command again resumes.
.SH ENVIRONMENT
.TP
.B AIRTOOL_<COMMAND>_<OPTION>
Default for an option, e.g. AIRTOOL_RESTORE_TILE=256 or AIRTOOL_TRAIN_EXPORT_OUT=w.safetensors;
each option above names its variable. Only options read the environment (not \fB\-\-version\fR
or the completion options). The command line wins over the environment, which wins over the
\fB\-\-config\fR file.
.TP
.B AIRTOOL_CONFIG
YAML file of defaults per command (same as \fB--config\fR).
.TP
.B AIRTOOL_WEIGHTS
Folder holding the weights and manifest.json (default: the weights installed with airtool).
.TP
.B AIRTOOL_CLIP
Local CLIP ViT\-L/14 folder for \fB--model se-symunet\fR (same as \fB--clip\fR; for training,
the config's model.clip).
.TP
.B AIRTOOL_DEBUG
Print a traceback on internal errors.
.TP
.B CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS, PYTORCH_CUDA_ALLOC_CONF
Honoured by PyTorch.
.TP
.B OMP_WAIT_POLICY
airtool sets PASSIVE unless it, GOMP_SPINCOUNT or KMP_BLOCKTIME is set: waiting OpenMP threads
sleep instead of spinning, so a run beside other busy jobs gets its fair share of the cores.
.SH FILES
.TP
.I weights/manifest.json
sha256, training configuration and measured scores of each shipped weights file.
.TP
.I OUTPUT/.airtool\-provenance.jsonl
What made each output of a restore (model, weights sha256, options), so that a re\-run with
other settings is refused instead of skipping outputs it did not make.
.SH EXAMPLES
.nf
airtool restore photo.jpg clean.jpg
airtool restore in/ out/ \-r \-\-model symunet
airtool degrade clean/ noisy/ \-\-noise 25 \-\-seed 0
cat in.png | airtool restore \- \- > out.png
.fi
.SH SEE ALSO
README.md in the airtool sources.
"""


def completion(shell: str) -> str:
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="airtool", complete_var="_AIRTOOL_COMPLETE", shell=shell).strip() + "\n"


def _roff(text: str) -> str:
    text = (text or "").replace("\\", "\\\\").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in text.splitlines())


def _option(param) -> str:
    names = ", ".join(f"\\fB{_roff(o)}\\fR" for o in [*param.opts, *param.secondary_opts])
    if not getattr(param, "is_flag", False):
        names += " \\fIVALUE\\fR"
    lines = [".TP", names, _roff(param.help or "")]
    if param.default not in (None, False, ()) and not getattr(param, "is_flag", False):
        lines.append(f"Default: {_roff(str(param.default))}.")
    if param.envvar:
        lines.append(f"Environment: {_roff(param.envvar)}.")
    return "\n".join(lines)


def _command(name: str, cmd) -> str:
    out = [f".SS airtool {name}", _roff((cmd.help or "").replace("\b\n", ""))]
    args = [p for p in cmd.params if p.param_type_name == "argument"]
    if args:
        out.append(".PP\nArguments: " + " ".join(f"\\fI{_roff(p.metavar or p.name.upper())}\\fR" for p in args))
    opts = [p for p in cmd.params if p.param_type_name == "option" and not p.hidden]
    out += [_option(p) for p in opts]
    return "\n".join(out)


def _walk(group, prefix: str = ""):
    for name, cmd in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        yield full, cmd
        if hasattr(cmd, "commands"):
            yield from _walk(cmd, full + " ")


def man_page() -> str:
    import typer.main

    from airtool._version import __version__
    from airtool.cli import app

    root = typer.main.get_command(app)
    parts = [
        f'.TH AIRTOOL 1 "" "airtool {__version__}" "User Commands"',
        ".SH NAME\nairtool \\- all\\-in\\-one image restoration: noise, rain, haze, blur and low light",
        ".SH SYNOPSIS\n.B airtool\n[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION\n" + _roff(root.help or ""),
        ".SH GLOBAL OPTIONS\n" + "\n".join(_option(p) for p in root.params if not p.hidden),
        ".SH COMMANDS",
        *[_command(name, cmd) for name, cmd in _walk(root)],
        SECTIONS_AFTER.strip(),
    ]
    return "\n".join(parts) + "\n"


def generate() -> dict[Path, str]:
    files = {ROOT / "completions" / fname: completion(shell) for shell, fname in SHELLS.items()}
    files[ROOT / "man" / "airtool.1"] = man_page()
    return files


def main() -> int:
    for path, text in generate().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
