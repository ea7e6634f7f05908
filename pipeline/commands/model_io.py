"""`seds export model` and `seds import model`: our trained SEDS <-> the authors' release checkpoint layout
(pipeline/models/seds/authors_layout.py; docs/model.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands.common import EXIT_OK, add_params_options, guarded, parse_overrides


def export_model(args: argparse.Namespace) -> int:
    import torch

    from pipeline.models.seds.authors_layout import export_state_dict
    from pipeline.train.evaluate import load_trained

    model, ck = load_trained(Path(args.checkpoint), "cpu")
    state = export_state_dict(model)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
    print(
        f"export model: {len(state)} tensors of {args.checkpoint} (step {ck['step']}) in the authors' layout -> {out}",
        flush=True,
    )
    return EXIT_OK


def import_model(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from pipeline.config import load_params
    from pipeline.models.checkpoints import load_state_dict, resolve_checkpoint
    from pipeline.models.seds.authors_layout import import_state_dict
    from pipeline.models.seds.model import SEDS, SEDS_SPANS
    from pipeline.train.checkpoint import save_checkpoint
    from pipeline.train.loop import model_config

    p = load_params(args.params, parse_overrides(args.overrides))["train"]
    source = resolve_checkpoint(args.file, "import model FILE")
    model = SEDS(model_config(p, SEDS_SPANS))
    imported = import_state_dict(model, load_state_dict(source.path), args.file)
    model.load_state_dict(imported.state, strict=True)
    weights = [
        f"every tensor from {source.describe()} (the authors' release layout; not used there: "
        f"{', '.join(imported.dropped) or 'none'})"
    ]
    save_checkpoint(
        Path(args.out),
        {
            "config": model.config.as_dict(),
            "params": asdict(p),
            "identity": {},
            "model": model.state_dict(),
            "optimizer": None,
            "scaler": None,
            "step": 0,
            "epoch": 0,
            "history": [],
            "seconds": 0.0,
            "epoch_sums": {},
            "selection": {"rule": "imported", "source": args.file},
            "weights": weights,
        },
    )
    print(
        f"import model: {len(imported.state)} tensors of {args.file} -> {args.out} (evaluate it with "
        f"seds evaluate --set evaluate.checkpoint={args.out})",
        flush=True,
    )
    return EXIT_OK


def register(export_sub, import_sub) -> None:
    e = export_sub.add_parser(
        "model",
        help="a trained SEDS as the authors' release checkpoint (their names, dtypes)",
        description="Write the weights of a train checkpoint under the names, shapes and "
        "dtypes the authors' release (longtaojiang/SEDS) uses, as a plain state "
        "dict their code loads. docs/model.md has the name map.",
    )
    e.add_argument("--checkpoint", default="runs/train/model.pt", help="train checkpoint (default: %(default)s)")
    e.add_argument("-o", "--out", required=True, help="file to write (torch.save of the state dict)")
    e.set_defaults(func=guarded(export_model))

    i = import_sub.add_parser(
        "model",
        help="the authors' release checkpoint as a train checkpoint (strict)",
        description="Load a checkpoint of the authors' release into the model train params "
        "describe (params.yaml; the How2Sign profile is theirs), strictly: every "
        "tensor maps to one of ours with its shape, or the import fails naming them. "
        "Writes our train checkpoint format, which seds evaluate reads.",
    )
    add_params_options(i)
    i.add_argument("file", help="the release checkpoint (path or URL; read weights-only)")
    i.add_argument(
        "-o", "--out", default="runs/imported/model.pt", help="train checkpoint to write (default: %(default)s)"
    )
    i.set_defaults(func=guarded(import_model))
