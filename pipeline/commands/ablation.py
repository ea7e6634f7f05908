"""`seds report ablation`: the finished DVC experiments as Markdown tables: every experiment, then the
paper's ablation tables with the paper's figures beside ours (docs/ablations.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.commands.common import EXIT_CANNOT_START, EXIT_OK


def ablation(args: argparse.Namespace) -> int:
    from pipeline.report.ablation import AblationError, ablation_rows, exp_show, format_markdown
    from pipeline.report.ablation_tables import format_tables

    try:
        rows, unfinished = ablation_rows(exp_show(Path(args.project)))
    except AblationError as err:
        print(f"seds: error: {err}", file=sys.stderr)
        return EXIT_CANNOT_START
    table = format_markdown(rows) + "\n\n## The paper's tables\n\n" + format_tables(rows)
    print(table, flush=True)
    note = f"{len(rows)} experiment(s) with metrics" + (f"; {unfinished} without metrics left out" if unfinished else "")
    print(note, file=sys.stderr)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table + "\n")
    return EXIT_OK


def register_report(report_subparsers) -> None:
    """Add `ablation` to the `seds report` group (which pipeline/commands/train.py owns)."""
    a = report_subparsers.add_parser(
        "ablation", help="finished DVC experiments: changed params and T2V/V2T R@1/5/10/MedR, then the paper's tables",
        description="Run `dvc exp show --json` in the project and print a Markdown table of every finished "
                    "experiment (and baseline commit with metrics): the params it changed against its baseline "
                    "commit and T2V / V2T R@1, R@5, R@10 and MedR from <evaluate.out>/metrics.json; then the "
                    "paper's Tables 3-6 and Figure 3 in its layout, each experiment in the table whose params "
                    "it alone changed, the paper's figures beside ours where known. Experiments without "
                    "metrics are counted on stderr. See docs/ablations.md.")
    a.add_argument("--project", default=".", help="the DVC project folder (default: the current one)")
    a.add_argument("--out", metavar="PATH", help="also write the table to this file")
    a.set_defaults(func=ablation)
