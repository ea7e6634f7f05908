"""`seds train`, `seds evaluate` and `seds report efficiency`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.commands.common import EXIT_CANNOT_START, EXIT_OK, add_params_options, guarded, parse_overrides


def _params(args: argparse.Namespace):
    from pipeline.config import load_params

    overrides = parse_overrides(args.overrides)
    if getattr(args, "device", None):
        overrides["runtime.device"] = args.device
    return load_params(args.params, overrides)


def _checkpoint_errors(fn):
    """Checkpoints that do not fit (wrong format, wrong shapes) are a user's error: one line, exit 2."""
    def wrapper(args: argparse.Namespace) -> int:
        from pipeline.models.signbert import CheckpointMismatch
        from pipeline.train.checkpoint import NotACheckpoint

        try:
            return fn(args)
        except (CheckpointMismatch, NotACheckpoint) as err:
            print(f"seds: error: {err}", file=sys.stderr)
            return EXIT_CANNOT_START
    return wrapper


def train(args: argparse.Namespace) -> int:
    from pipeline.train.loop import train as run

    params = _params(args)
    if args.no_progress:
        from dataclasses import replace

        params.sections["train"] = replace(params["train"], progress=False)
    result = run(params)
    print(f"train: {result.clips}; " + "; ".join(result.notes), flush=True)
    print(result.line(), flush=True)
    return EXIT_OK


def evaluate(args: argparse.Namespace) -> int:
    from pipeline.train.evaluate import run_evaluate

    params = _params(args)
    record = run_evaluate(params)
    t2v, v2t = record["t2v"], record["v2t"]
    print(f"evaluate: {record['split']}, {record['clips']} clips (chance R@1 {record['chance_R@1']:.1f}%): "
          f"T2V R@1 {t2v['R@1']:.1f} R@5 {t2v['R@5']:.1f} R@10 {t2v['R@10']:.1f} MedR {t2v['MedR']:.1f}; "
          f"V2T R@1 {v2t['R@1']:.1f} R@5 {v2t['R@5']:.1f} R@10 {v2t['R@10']:.1f} MedR {v2t['MedR']:.1f} "
          f"-> {params['evaluate'].out}", flush=True)
    return EXIT_OK


def efficiency(args: argparse.Namespace) -> int:
    from pipeline.train.efficiency import as_json, efficiency_rows, format_table

    rows = efficiency_rows()
    print(format_table(rows), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(as_json(rows) + "\n")
    return EXIT_OK


def register(subparsers) -> None:
    t = subparsers.add_parser("train", help="train SEDS on the select and rgb views (params: train)",
                              description="Train the SEDS model on train.split, resuming from train.out/checkpoints/"
                                          "last.pt when its params match; writes model.pt, per-epoch plots and "
                                          "metrics.json under train.out.")
    add_params_options(t)
    t.add_argument("--device", help="override runtime.device (auto, cpu, cuda, cuda:N)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=guarded(_checkpoint_errors(train)))

    e = subparsers.add_parser("evaluate", help="T2V / V2T retrieval metrics of a trained model (params: evaluate)",
                              description="Retrieve within evaluate.split with evaluate.checkpoint: R@1/5/10, MedR and "
                                          "MeanR into metrics.json, similarity matrices into similarity.npz.")
    add_params_options(e)
    e.add_argument("--device", help="override runtime.device (auto, cpu, cuda, cuda:N)")
    e.set_defaults(func=guarded(_checkpoint_errors(evaluate)))

    r = subparsers.add_parser("report", help="reports about the model (efficiency)")
    sub = r.add_subparsers(dest="report_command", required=True)
    f = sub.add_parser("efficiency", help="params and FLOPs per module beside the paper's Table 2",
                       description="Count parameters and FLOPs (torch's FlopCounterMode, fake tensors) of each SEDS "
                                   "module at the paper's input sizes, batch 16, beside the paper's Table 2.")
    f.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    f.set_defaults(func=guarded(efficiency))
    from pipeline.commands.ablation import register_report  # seds report ablation
    register_report(sub)
