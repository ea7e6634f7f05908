"""`seds evaluate` (retrieval metrics of a trained model) and `seds report efficiency | figures | run |
ablation` (the finished DVC experiments as Markdown tables: every experiment, then the paper's ablation
tables with the paper's figures beside ours, docs/ablations.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.commands.common import EXIT_OK, add_device_option, add_params_options, guarded, params_of


def evaluate(args: argparse.Namespace) -> int:
    from pipeline.report.figures import write_figures
    from pipeline.report.run_report import write_run_report
    from pipeline.train.evaluate import run_evaluate

    params = params_of(args)
    record = run_evaluate(params)
    out = Path(params["evaluate"].out)
    write_figures(out, params)
    write_run_report(params, out)
    t2v, v2t = record["t2v"], record["v2t"]
    print(
        f"evaluate: {record['split']}, {record['clips']} clips (chance R@1 {record['chance_R@1']:.1f}%): "
        f"T2V R@1 {t2v['R@1']:.1f} R@5 {t2v['R@5']:.1f} R@10 {t2v['R@10']:.1f} MedR {t2v['MedR']:.1f}; "
        f"V2T R@1 {v2t['R@1']:.1f} R@5 {v2t['R@5']:.1f} R@10 {v2t['R@10']:.1f} MedR {v2t['MedR']:.1f} "
        f"-> {params['evaluate'].out} (report.md, figures/) in {record['seconds']:.0f} s",
        flush=True,
    )
    return EXIT_OK


def report_figures(args: argparse.Namespace) -> int:
    from pipeline.report.figures import write_figures

    params = params_of(args)
    paths = write_figures(Path(params["evaluate"].out), params)
    print("report figures: " + ", ".join(str(p) for p in paths), flush=True)
    return EXIT_OK


def report_run(args: argparse.Namespace) -> int:
    from pipeline.report.run_report import write_run_report

    params = params_of(args)
    print(f"report run: {write_run_report(params, Path(params['evaluate'].out))}", flush=True)
    return EXIT_OK


def efficiency(args: argparse.Namespace) -> int:
    from pipeline.train.efficiency import as_json, efficiency_rows, format_table

    rows = efficiency_rows()
    print(format_table(rows), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(as_json(rows) + "\n")
    return EXIT_OK


def ablation(args: argparse.Namespace) -> int:
    from pipeline.report.experiments import ablation_rows, exp_show, format_markdown
    from pipeline.report.paper_tables import format_tables

    rows, unfinished = ablation_rows(exp_show(Path(args.project)))
    table = format_markdown(rows) + "\n\n## The paper's tables\n\n" + format_tables(rows)
    print(table, flush=True)
    note = f"{len(rows)} experiment(s) with metrics" + (
        f"; {unfinished} without metrics left out" if unfinished else ""
    )
    print(note, file=sys.stderr)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table + "\n")
    return EXIT_OK


def register(subparsers) -> None:
    e = subparsers.add_parser(
        "evaluate",
        help="T2V / V2T retrieval metrics of a trained model (params: evaluate)",
        description="Retrieve within evaluate.split with evaluate.checkpoint: R@1/5/10, MedR and "
        "MeanR into metrics.json, similarity matrices into similarity.npz, the "
        "figure queries' token similarities into token_similarity.npz, figures "
        "into figures/ and a run summary into report.md (all under "
        "evaluate.out; seds report figures|run redraw the last two).",
    )
    add_params_options(e)
    add_device_option(e)
    e.set_defaults(func=guarded(evaluate))

    r = subparsers.add_parser("report", help="reports: model efficiency, evaluation figures, run report")
    sub = r.add_subparsers(dest="report_command", required=True)
    f = sub.add_parser(
        "efficiency",
        help="params and FLOPs per module beside the paper's Table 2",
        description="Count parameters and FLOPs (torch's FlopCounterMode, fake tensors) of each SEDS "
        "module at the paper's input sizes, batch 16, beside the paper's Table 2.",
    )
    f.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    f.set_defaults(func=guarded(efficiency))
    g = sub.add_parser(
        "figures",
        help="redraw the evaluate figures from evaluate.out (no model needed)",
        description="Redraw evaluate.out/figures/ from the saved evaluate outputs: retrieval_top3.png "
        "(top-3 text-to-video retrieval per query for Pose only, RGB only and fused, "
        "frames decoded from the clips' videos, the true clip framed in green) from "
        "similarity.npz, and fine_grained_<k>.png (step x word Pose-Text and RGB-Text "
        "similarity of query k's true pair) from token_similarity.npz. The queries are "
        "those the evaluate stage chose (evaluate.figure_queries, figure_samples); "
        "the protocol, tie rule and grouping are metrics.json's, as the metrics were "
        "counted; evaluate.figure_frames applies now.",
    )
    add_params_options(g)
    g.set_defaults(func=guarded(report_figures))
    u = sub.add_parser(
        "run",
        help="rewrite evaluate.out/report.md from what the stages recorded",
        description="Write evaluate.out/report.md: metrics per stream, training summary, links to "
        "the figures and training plots, the weights each stage used (random ones "
        "said so), clips per split and store sizes, seconds per stage (from the run "
        "records of item stages, train's and evaluate's metrics.json), and the params "
        "(train's as saved in the checkpoint).",
    )
    add_params_options(u)
    u.set_defaults(func=guarded(report_run))
    a = sub.add_parser(
        "ablation",
        help="finished DVC experiments: changed params and T2V/V2T R@1/5/10/MedR, then the paper's tables",
        description="Run `dvc exp show --json` in the project and print a Markdown table of every finished "
        "experiment (and baseline commit with metrics): the params it changed against its baseline "
        "commit and T2V / V2T R@1, R@5, R@10 and MedR from <evaluate.out>/metrics.json; then the "
        "paper's Tables 3-6 and Figure 3 in its layout, each experiment in the table whose params "
        "it alone changed, the paper's figures beside ours where known. Experiments without "
        "metrics are counted on stderr. See docs/ablations.md.",
    )
    a.add_argument("--project", default=".", help="the DVC project folder (default: the current one)")
    a.add_argument("--out", metavar="PATH", help="also write the table to this file")
    a.set_defaults(func=guarded(ablation))
