"""Finalize: turn the store's index into the stage's view for one manifest, checking coverage.

The view is `manifests/<stage>.parquet`: the input view's columns plus `<stage>_key`, `<stage>_status`
(ok | failed | upstream_failed | skipped), `<stage>_reason` and the stage's chosen attrs, with the fingerprints
of this and every upstream stage in the Parquet metadata. It depends only on inputs and fingerprints
(no timings, hosts or paths), so a sharded run and a single run give byte-identical views.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.fingerprint import item_key
from pipeline.runner.plan import FINGERPRINTS_META, Plan, ShardSpec, view_path
from pipeline.store.index import StageIndex


class CoverageError(RuntimeError):
    """Some manifest items are neither in the store nor in the failures table."""


@dataclass
class Coverage:
    ok: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # reason -> count
    upstream_failed: int = 0
    skipped: int = 0  # left out by the stage's own params
    missing: list[str] = field(default_factory=list)  # sample ids with no outcome at all

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())


def _row_outcome(plan: Plan, index: StageIndex, row: dict[str, Any], content: str | None) -> dict[str, Any]:
    stage = plan.stage.name
    upstream_status = row.get(f"{plan.stage.upstream}_status", "ok")
    out: dict[str, Any] = {f"{stage}_key": None, f"{stage}_status": None, f"{stage}_reason": None}
    out.update({name: None for name in plan.stage.view_attrs})
    if upstream_status != "ok":
        out[f"{stage}_status"] = "upstream_failed"
        out[f"{stage}_reason"] = row.get(f"{plan.stage.upstream}_reason") or upstream_status
        return out
    skip = plan.stage.skip_reason(row)
    if skip is not None:
        out[f"{stage}_status"], out[f"{stage}_reason"] = "skipped", skip
        return out
    if content is None:
        failure = index.failure_for(None, row["sample_id"])
        out[f"{stage}_status"] = "failed"
        out[f"{stage}_reason"] = failure.reason if failure else "missing_file"
        return out
    key = item_key(plan.stage.item_content(row, content), row["start_s"], row["end_s"], plan.fingerprint.digest)
    out[f"{stage}_key"] = key
    if key in index:
        out[f"{stage}_status"] = "ok"
        attrs = index.rows[key].attrs
        out.update({name: attrs.get(name) for name in plan.stage.view_attrs})
        return out
    failure = index.failure_for(key, row["sample_id"])
    if failure is not None:
        out[f"{stage}_status"] = "failed"
        out[f"{stage}_reason"] = failure.reason
    return out  # status None: not covered


def finalize(plan: Plan, manifests_dir, shard: ShardSpec | None = None) -> Coverage:
    """Check coverage of `shard`'s rows (all rows by default); write the view when all rows are covered
    and no shard restriction applies. Raises CoverageError naming uncovered samples."""
    shard = shard or ShardSpec()
    index = StageIndex.load(plan.stage_dir)
    rows = plan.view.to_pylist()
    contents = plan.content_hash_column or [r.get("content_hash") for r in rows]
    coverage = Coverage()
    outcomes = []
    for row, content in zip(rows, contents):
        if not shard.owns(row["sample_id"]):  # another task's row: not hashed by this one, not checked
            continue
        outcome = _row_outcome(plan, index, row, content)
        outcomes.append(outcome)
        status = outcome[f"{plan.stage.name}_status"]
        if status == "ok":
            coverage.ok += 1
        elif status == "failed":
            reason = outcome[f"{plan.stage.name}_reason"]
            coverage.failed[reason] = coverage.failed.get(reason, 0) + 1
        elif status == "upstream_failed":
            coverage.upstream_failed += 1
        elif status == "skipped":
            coverage.skipped += 1
        else:
            coverage.missing.append(row["sample_id"])
    if coverage.missing:
        shown = ", ".join(coverage.missing[:5]) + (" ..." if len(coverage.missing) > 5 else "")
        raise CoverageError(
            f"{plan.stage.name}: {len(coverage.missing)} item(s) are neither in the store nor in "
            f"the failures table ({shown}); some shard did not finish: rerun the missing shards "
            f"or `seds run {plan.stage.name}` (it computes only what is missing)"
        )
    if shard.count == 1:
        _write_view(plan, manifests_dir, rows, contents, outcomes)
    return coverage


def _write_view(plan: Plan, manifests_dir, rows, contents, outcomes) -> None:
    table = plan.view
    if plan.content_hash_column is not None:
        table = table.drop_columns([c for c in ("content_hash",) if c in table.column_names])
        table = table.append_column("content_hash", pa.array(contents, type=pa.string()))
    names = (
        list(outcomes[0])
        if outcomes
        else [
            f"{plan.stage.name}_key",
            f"{plan.stage.name}_status",
            f"{plan.stage.name}_reason",
            *plan.stage.view_attrs,
        ]
    )
    own = {f"{plan.stage.name}_key", f"{plan.stage.name}_status", f"{plan.stage.name}_reason"}
    for name in names:
        if name in table.column_names:  # this stage's value replaces a same-named upstream column
            table = table.drop_columns([name])
        values = [o[name] for o in outcomes]
        kind = pa.string() if name in own or not any(v is not None for v in values) else None
        table = table.append_column(name, pa.array(values, type=kind))
    fingerprints = {**plan.upstream_fingerprints, plan.stage.name: plan.fingerprint.digest}
    meta = dict(table.schema.metadata or {})
    meta[FINGERPRINTS_META] = json.dumps(fingerprints, sort_keys=True).encode()
    table = table.replace_schema_metadata(meta)
    path = view_path(manifests_dir, plan.stage.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}.{uuid.uuid4().hex[:8]}")  # two finalizes at once never share one
    pq.write_table(table, tmp)
    tmp.replace(path)
