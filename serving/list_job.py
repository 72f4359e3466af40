"""The daily risk list as per-partition work plus a combine step, for every engine.

1. `score_partition`: every partition is validated, featurised and scored by `build_risk_list`,
   with the teams' capacities applied within the partition. A customer over capacity within their
   partition is over it in the whole bank too (the customers ahead of them in their partition are
   ahead of them in the whole bank), so only the customers a partition would contact are
   candidates. Its rows, features, context and bank contacts are spilled to
   `<version>/.spill/part-<k>/`, so neither engine holds more than a partition in memory.
2. `global_decisions`: the candidates (at most the teams' capacity per partition) are combined,
   sorted by expected saving over the whole bank, and the capacities applied again: the top-N.
3. `finish_partition`: each partition takes the global decisions and writes its part of the list
   and of the scored features (`risk_list.parquet/part-<k>.parquet`,
   `features.parquet/part-<k>.parquet`, a part of `risk_list.csv`), and returns its digest.
4. The database gets the list, the features and the context partition by partition, in batches
   of `engine.db_batch_rows`, inside one transaction, each partition as soon as step 3 has
   written its files; the run is recorded and committed once every file is written; then the
   version is published.

The engine (`churn.engine.partition_runner`) decides only where steps 1 and 3 run.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churn.config import AppConfig
from features.partition_jobs import Partitions, check_reject_shares, open_partitions, validated_partition
from serving.actions import list_valuation
from serving.list_summary import ListDigest, latest_impact, summary_html, summary_lines
from serving.model_bundle import categoricals_as_text
from serving.policy import decide_contacts
from serving.publish import SPILL, daily_transaction, finish_version, new_version, publish, reconcile
from serving.risk_list import (
    RiskListRun,
    build_risk_list,
    check_as_of,
    read_recorded_contacts,
    retention_line,
    trigger_counts,
)
from serving.triggers import decide_triggers, trigger_candidates

DECISION_COLUMNS = ["contact", "contact_rule", "list_rank"]
CANDIDATE_COLUMNS = ["expected_saving", "action_owner", "branch_id"]


def _spill(staging: str, k: int) -> Path:
    return Path(staging) / SPILL / f"part-{k:05d}"


def score_partition(
    k: int,
    parts: Partitions,
    bundle,
    version: str,
    as_of: pd.Timestamp,
    config: AppConfig,
    recorded: pd.DataFrame | None,
    staging: str,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Partition k scored, capacities applied within it, spilled; returns its candidates and the
    seconds of each stage."""
    seconds: dict[str, float] = {}
    tables = validated_partition(parts, k, seconds, keep_event_ids=False).tables
    if recorded is not None and len(recorded):
        recorded = recorded[recorded["customer_id"].isin(tables["customers"]["customer_id"])]
    rows, features = build_risk_list(
        tables, bundle, version, as_of, config, recorded_contacts=recorded, seconds=seconds
    )
    mark = time.perf_counter()
    folder = _spill(staging, k)
    folder.mkdir(parents=True)
    rows.to_parquet(folder / "rows.parquet")
    features.to_parquet(folder / "features.parquet")
    tables["customers"].set_index("customer_id").loc[features.index].to_parquet(folder / "context.parquet")
    tables["contacts"].to_parquet(folder / "contacts.parquet", index=False)
    chosen = rows[rows["contact"].fillna(False).astype(bool)]
    seconds["spill"] = time.perf_counter() - mark
    return chosen[CANDIDATE_COLUMNS], seconds


def global_decisions(chosen: pd.DataFrame, config: AppConfig) -> pd.DataFrame:
    """The capacities applied over the whole bank to the partitions' candidates (in customer
    order, so ties in expected saving break as they would on the whole bank at once)."""
    n = len(chosen)
    decided = decide_contacts(
        {
            "reportable": np.ones(n, dtype=bool),
            "do_not_contact": np.zeros(n, dtype=bool),
            "control_group": np.zeros(n, dtype=bool),
            "days_since_last_contact": np.full(n, np.nan),
            "contacts_last_quarter": np.zeros(n, dtype=int),
            "expected_saving": chosen["expected_saving"].to_numpy(dtype=float),
            "owner": chosen["action_owner"].astype(str).to_numpy(),
            "branch_id": chosen["branch_id"].to_numpy(),
        },
        config.contact_policy,
        config.playbook,
    )
    return pd.DataFrame(decided, index=chosen.index)


def _arrow(frame: pd.DataFrame, index: bool = False) -> pa.Table:
    """A part's table with columns that are all missing typed as text, so every part of a
    dataset has the same schema."""
    table = pa.Table.from_pandas(frame, preserve_index=index)
    schema = pa.schema(
        [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema],
        metadata=table.schema.metadata,  # pandas types (nullable booleans) read back as written
    )
    return table.cast(schema)


def finish_partition(k: int, decisions: pd.DataFrame, staging: str, config: AppConfig) -> dict[str, Any]:
    """Take the global decisions, write this partition's files; returns its digest and counts."""
    started = time.perf_counter()
    spill, folder = _spill(staging, k), Path(staging)
    rows = pd.read_parquet(spill / "rows.parquet")
    features = pd.read_parquet(spill / "features.parquet")
    mine = decisions.index.intersection(rows.index)
    for column in DECISION_COLUMNS:
        rows.loc[mine, column] = decisions.loc[mine, column].to_numpy()
    table = categoricals_as_text(rows).reset_index()
    pq.write_table(_arrow(table), folder / "risk_list.parquet" / f"part-{k:05d}.parquet")
    pq.write_table(
        _arrow(categoricals_as_text(features), index=True),  # by customer id
        folder / "features.parquet" / f"part-{k:05d}.parquet",
    )
    table.to_csv(folder / "risk_list.csv.parts" / f"part-{k:05d}.csv", index=False, header=k == 0)
    excluded = rows[rows["status"] == "excluded"]
    scored = rows[rows["status"] == "scored"]
    return {
        "triggers": trigger_candidates(features, scored, config),
        "digest": ListDigest.of(rows),
        "customers": len(rows),
        "excluded": len(excluded),
        "exclusions": excluded["exclusion_reason"].value_counts(),
        "contacts_planned": int(rows["contact"].fillna(False).sum()),
        "seconds": time.perf_counter() - started,
    }


def _batches(staging: Path, k: int, rows_per_batch: int) -> Iterator[tuple]:
    """Finished partition k read back from its files, cut into batches for the database."""
    spill = _spill(str(staging), k)
    table = pd.read_parquet(staging / "risk_list.parquet" / f"part-{k:05d}.parquet")
    features = pd.read_parquet(spill / "features.parquet")
    context = pd.read_parquet(spill / "context.parquet")
    contacts = pd.read_parquet(spill / "contacts.parquet")
    for start in range(0, max(len(table), 1), rows_per_batch):
        ids = table["customer_id"].iloc[start : start + rows_per_batch]
        yield (
            table.iloc[start : start + rows_per_batch],
            features[features.index.isin(ids)],
            context[context.index.isin(ids)],
            contacts[contacts["customer_id"].isin(ids)],
        )


def _join_csv(parts_dir: Path, target: Path) -> None:
    with target.open("wb") as out:
        for part in sorted(parts_dir.glob("part-*.csv")):
            with part.open("rb") as source:
                shutil.copyfileobj(source, out)
    shutil.rmtree(parts_dir)


def _run_meta(
    parts: Partitions, finished: list[dict], digest: ListDigest, rejects: dict, **known: Any
) -> dict[str, Any]:
    """The run's record (`run.json`, the database's run row) from the finished partitions."""
    exclusions = pd.concat([f["exclusions"] for f in finished]).groupby(level=0).sum()
    return {
        "as_of": known["as_of"],
        "model_version": known["model_version"],
        "model_name": known["model_name"],
        "data_source": known["data_source"],
        "data_start": f"{parts.months[0]:%Y-%m-%d}",
        "data_end": f"{parts.months[1]:%Y-%m-%d}",
        "customers": sum(f["customers"] for f in finished) + rejects["customers"],
        "scored": digest.scored,
        "excluded": sum(f["excluded"] for f in finished),
        "exclusions": {str(k): int(v) for k, v in exclusions.sort_values(ascending=False).items()},
        "rejected_customers": rejects["customers"],
        "rejects": rejects | {"contact_history": known["rejected_contacts"]},
        "contacts_planned": int(sum(f["contacts_planned"] for f in finished)),
        "ranking": known["ranking"],
        "triggers": known["triggers"],
        "created_at": known["created_at"],
        "engine": known["engine"],
        "partitions": parts.count,
    }


def run_daily_list(config: AppConfig, as_of: pd.Timestamp | None = None) -> tuple[RiskListRun, list[str]]:
    """Validate, score every customer with the champion, write files and the database, summarise."""
    import sqlalchemy as sa

    from churn.engine import partition_runner
    from serving.registry import load_champion
    from serving.tables import LIST_TABLE

    started = time.perf_counter()
    reconcile(config.output_path / "risk_lists", config.database_url)  # finish a run killed mid-publish
    with partition_runner(config) as runner:
        parts = open_partitions(config, runner)
        as_of = (
            pd.Timestamp(as_of) if as_of is not None else (parts.months[1] + pd.Timedelta(days=1)).normalize()
        )
        check_as_of(as_of, parts.months[0], parts.last_day)
        bundle, version = load_champion(config)
        recorded, rejected_contacts = read_recorded_contacts(config, config.output_path / "rejects")
        staging = new_version(config.output_path / "risk_lists", f"{as_of:%Y-%m-%d}")
        for name in ("risk_list.parquet", "features.parquet", "risk_list.csv.parts"):
            (staging / name).mkdir()
        chosen = runner.map(
            score_partition,
            range(parts.count),
            broadcast={"bundle": bundle, "recorded": recorded},
            parts=parts,
            version=version,
            as_of=as_of,
            config=config,
            staging=str(staging),
        )
        stages = pd.DataFrame([s for _, s in chosen]).sum()
        chosen = pd.concat([c for c, _ in chosen])
        decisions = global_decisions(chosen, config)
        rejects = check_reject_shares(parts, config.data.max_reject_share)
        created_at = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
        # each partition goes to the database as soon as its files are written, while the others
        # are still finishing; the transaction commits once the run is recorded
        with daily_transaction(config.database_url, f"{as_of:%Y-%m-%d}", pd.Timestamp(created_at)) as db:
            finished = []
            for k, done in enumerate(
                runner.imap(
                    finish_partition,
                    range(parts.count),
                    broadcast={"decisions": decisions},
                    staging=str(staging),
                    config=config,
                )
            ):
                finished.append(done)
                for batch in _batches(staging, k, config.engine.db_batch_rows):
                    db.append(*batch)
            _join_csv(staging / "risk_list.csv.parts", staging / "risk_list.csv")
            digest = ListDigest.combine([f["digest"] for f in finished])
            risk_contacts = chosen.loc[decisions.index[decisions["contact"].to_numpy(dtype=bool)]]
            triggers = decide_triggers(pd.concat([f["triggers"] for f in finished]), risk_contacts, config)
            triggers.to_parquet(staging / "triggers.parquet", index=False)
            triggers.to_csv(staging / "triggers.csv", index=False)
            meta = _run_meta(
                parts,
                finished,
                digest,
                rejects,
                as_of=f"{as_of:%Y-%m-%d}",
                model_version=version,
                model_name=config.mlflow.model_name,
                data_source=config.data.source,
                rejected_contacts=rejected_contacts,
                ranking=list_valuation(bundle, config),
                triggers=trigger_counts(triggers, config),
                created_at=created_at,
                engine=config.engine.kind,
            )
            stages["files"] = sum(f["seconds"] for f in finished)  # the list's parts, features, CSV
            # up to the commit, which follows at once; the stages summed over all partitions
            meta["seconds"] = round(time.perf_counter() - started, 2)
            meta["stage_seconds"] = {stage: round(float(s), 2) for stage, s in stages.items()}
            finish_version(staging, meta, summary_html(digest, meta, latest_impact(config.output_path)))
            db.record(meta, triggers)
    database_seconds = db.seconds  # inside the transaction, partly while partitions were finishing
    final = publish(staging)  # removes the spill
    lines = summary_lines(digest, meta) + [
        f"written to            {final} (risk_list, triggers: .parquet and .csv; summary.html) and {LIST_TABLE} in "
        f"{sa.make_url(config.database_url).render_as_string(hide_password=True)}",
        f"engine                {config.engine.kind}, {parts.count} partition{'s' if parts.count != 1 else ''}",
        retention_line(config),
        f"took                  {time.perf_counter() - started:.1f} s ("
        + ", ".join(f"{stage} {s:.1f} s" for stage, s in meta["stage_seconds"].items())
        + f", database {database_seconds:.1f} s)",
    ]
    timed = meta | {"stage_seconds": meta["stage_seconds"] | {"database": round(database_seconds, 2)}}
    return RiskListRun(as_of, version, timed, final), lines
