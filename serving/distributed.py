"""The daily risk list on the `dask` engine: the local job, one customer partition per task.

1. Every partition is validated, featurised and scored by `build_risk_list`, the local job's own
   function, with the teams' capacities applied within the partition. A customer over capacity
   within their partition is over it in the whole bank too (the customers ahead of them in their
   partition are ahead of them in the whole bank), so only the customers a partition would
   contact are candidates.
2. The candidates (at most the teams' capacity per partition) are gathered to the client, sorted
   by expected saving over the whole bank, and the capacities applied again: the global top-N.
3. Each partition takes the global decisions, writes its part of the list and of the scored
   features (`risk_list.parquet/part-<k>.parquet`, `features.parquet/part-<k>.parquet`), and
   its digest for the summary; the CSV parts are joined into one `risk_list.csv`.
4. The database gets the list, the features and the context partition by partition, in batches
   of `engine.db_batch_rows`, inside one transaction.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churn.config import AppConfig
from features.distributed import Partitions, check_reject_shares, open_partitions, validated_partition
from serving.list_summary import ListDigest, latest_impact, summary_html, summary_lines
from serving.model_bundle import categoricals_as_text
from serving.policy import decide_contacts
from serving.publish import finish_version, new_version, publish, reconcile, write_database
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


def score_partition(
    k: int,
    parts: Partitions,
    bundle,
    version: str,
    as_of: pd.Timestamp,
    config: AppConfig,
    recorded: pd.DataFrame | None,
) -> dict[str, pd.DataFrame]:
    """Partition k scored by the local job's function, capacities applied within the partition."""
    tables = validated_partition(parts, k).tables
    if recorded is not None and len(recorded):
        recorded = recorded[recorded["customer_id"].isin(tables["customers"]["customer_id"])]
    rows, features = build_risk_list(tables, bundle, version, as_of, config, recorded_contacts=recorded)
    return {
        "rows": rows,
        "features": features,
        "context": tables["customers"].set_index("customer_id").loc[features.index],
        "contacts": tables["contacts"],
    }


def candidates(part: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The customers this partition would contact: the only ones who can make the global list."""
    rows = part["rows"]
    chosen = rows[rows["contact"].fillna(False).astype(bool)]
    return chosen[["expected_saving", "action_owner", "branch_id"]]


def global_decisions(chosen: pd.DataFrame, config: AppConfig) -> pd.DataFrame:
    """The capacities applied over the whole bank to the partitions' candidates (in customer
    order, so ties in expected saving break as on the local engine)."""
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


def finish_partition(
    part: dict[str, pd.DataFrame], decisions: pd.DataFrame, k: int, staging: str, config: AppConfig
) -> dict[str, Any]:
    """Take the global decisions, write this partition's files, and return its batch and digest."""
    rows = part["rows"]
    mine = decisions.index.intersection(rows.index)
    for column in DECISION_COLUMNS:
        rows.loc[mine, column] = decisions.loc[mine, column].to_numpy()
    table = categoricals_as_text(rows).reset_index()
    folder = Path(staging)
    pq.write_table(_arrow(table), folder / "risk_list.parquet" / f"part-{k:05d}.parquet")
    pq.write_table(
        _arrow(categoricals_as_text(part["features"]), index=True),  # by customer id, as on local
        folder / "features.parquet" / f"part-{k:05d}.parquet",
    )
    table.to_csv(folder / "risk_list.csv.parts" / f"part-{k:05d}.csv", index=False, header=k == 0)
    excluded = rows[rows["status"] == "excluded"]
    scored = rows[rows["status"] == "scored"]
    return {
        "triggers": trigger_candidates(part["features"], scored, config),
        "table": table,
        "features": part["features"],
        "context": part["context"],
        "contacts": part["contacts"],
        "digest": ListDigest.of(rows),
        "counts": {
            "customers": len(rows),
            "excluded": len(excluded),
            "exclusions": excluded["exclusion_reason"].value_counts(),
            "contacts_planned": int(rows["contact"].fillna(False).sum()),
        },
    }


def _summary(finished: dict[str, Any]) -> tuple[ListDigest, dict[str, Any], pd.DataFrame]:
    return finished["digest"], finished["counts"], finished["triggers"]


def _batches(client, futures: list, rows_per_batch: int):
    """The finished partitions one at a time, cut into batches; each released once written."""
    for future in futures:
        part = client.submit(
            lambda f: (f["table"], f["features"], f["context"], f["contacts"]), future
        ).result()
        table, features, context, contacts = part
        for start in range(0, max(len(table), 1), rows_per_batch):
            ids = table["customer_id"].iloc[start : start + rows_per_batch]
            in_features = features.index.isin(ids)
            yield (
                table.iloc[start : start + rows_per_batch],
                features[in_features],
                context[context.index.isin(ids)],
                contacts[contacts["customer_id"].isin(ids)],
            )
        future.release()


def _join_csv(parts_dir: Path, target: Path) -> None:
    with target.open("wb") as out:
        for part in sorted(parts_dir.glob("part-*.csv")):
            with part.open("rb") as source:
                shutil.copyfileobj(source, out)
    shutil.rmtree(parts_dir)


def run_daily_list_dask(
    config: AppConfig, client, as_of: pd.Timestamp | None = None
) -> tuple[RiskListRun, list[str]]:
    """`serving.risk_list.run_daily_list` on the dask engine (module docstring)."""
    import sqlalchemy as sa

    from serving.registry import load_champion
    from serving.store import LIST_TABLE

    started = time.perf_counter()
    reconcile(config.output_path / "risk_lists", config.database_url)  # finish a run killed mid-publish
    from churn.engine import DaskRunner

    parts = open_partitions(config, DaskRunner(client))
    as_of = pd.Timestamp(as_of) if as_of is not None else (parts.months[1] + pd.Timedelta(days=1)).normalize()
    check_as_of(as_of, parts.months[0], parts.last_day)
    bundle, version = load_champion(config)
    recorded, rejected_contacts = read_recorded_contacts(config, config.output_path / "rejects")
    shared = client.scatter([bundle, recorded], broadcast=True)
    scored = client.map(
        score_partition,
        range(parts.count),
        parts=parts,
        bundle=shared[0],
        version=version,
        as_of=as_of,
        config=config,
        recorded=shared[1],
    )
    chosen = pd.concat(client.gather(client.map(candidates, scored)))
    decisions = global_decisions(chosen, config)
    rejects = check_reject_shares(parts, config.data.max_reject_share)

    staging = new_version(config.output_path / "risk_lists", f"{as_of:%Y-%m-%d}")
    for name in ("risk_list.parquet", "features.parquet", "risk_list.csv.parts"):
        (staging / name).mkdir()
    decisions_future = client.scatter(decisions, broadcast=True)
    finished = [
        client.submit(finish_partition, part, decisions_future, k, str(staging), config)
        for k, part in enumerate(scored)
    ]
    del scored  # the finished partitions hold what is still needed
    summaries = client.gather(client.map(_summary, finished))
    _join_csv(staging / "risk_list.csv.parts", staging / "risk_list.csv")
    digest = ListDigest.combine([d for d, _, _ in summaries])
    counts = [c for _, c, _ in summaries]
    risk_contacts = chosen.loc[decisions.index[decisions["contact"].to_numpy(dtype=bool)]]
    triggers = decide_triggers(pd.concat([t for _, _, t in summaries]), risk_contacts, config)
    triggers.to_parquet(staging / "triggers.parquet", index=False)
    triggers.to_csv(staging / "triggers.csv", index=False)
    exclusions = pd.concat([c["exclusions"] for c in counts]).groupby(level=0).sum()
    excluded = sum(c["excluded"] for c in counts)
    meta = {
        "as_of": f"{as_of:%Y-%m-%d}",
        "model_version": version,
        "model_name": config.mlflow.model_name,
        "data_source": config.data.source,
        "data_start": f"{parts.months[0]:%Y-%m-%d}",
        "data_end": f"{parts.months[1]:%Y-%m-%d}",
        "customers": sum(c["customers"] for c in counts) + rejects["customers"],
        "scored": digest.scored,
        "excluded": excluded,
        "exclusions": {str(k): int(v) for k, v in exclusions.sort_values(ascending=False).items()},
        "rejected_customers": rejects["customers"],
        "rejects": rejects | {"contact_history": rejected_contacts},
        "contacts_planned": int(sum(c["contacts_planned"] for c in counts)),
        "triggers": trigger_counts(triggers, config),
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "engine": "dask",
        "partitions": parts.count,
    }
    meta["seconds"] = round(time.perf_counter() - started, 2)
    finish_version(staging, meta, summary_html(digest, meta, latest_impact(config.output_path)))
    write_database(
        _batches(client, finished, config.engine.db_batch_rows), meta, config.database_url, triggers
    )
    final = publish(staging)
    lines = summary_lines(digest, meta) + [
        f"written to            {final} (risk_list.parquet, risk_list.csv, summary.html) and {LIST_TABLE} in "
        f"{sa.make_url(config.database_url).render_as_string(hide_password=True)}",
        f"engine                dask, {parts.count} partition{'s' if parts.count != 1 else ''}",
        retention_line(config),
        f"took                  {time.perf_counter() - started:.1f} s",
    ]
    return RiskListRun(as_of, version, None, meta, final), lines
