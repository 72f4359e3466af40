"""Training jobs: train-log-register, and promote."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from churn.config import AppConfig
from training.pipeline import as_float_dict


@dataclass(frozen=True)
class TrainSummary:
    run_id: str
    version: str
    lines: list[str]


def run_training(config: AppConfig, metrics_json: Path | None = None, cv_folds: int = 0) -> TrainSummary:
    """Train, log the run and register the bundle as `challenger`.

    With `source:` in the config, trains on the bank's own customer-level table; otherwise on
    snapshots of the six bank tables. `metrics_json` receives the held-out (and CV) metrics.
    """
    from training.pipeline import summary_lines, train_on_rows
    from training.tracking import log_training_run

    started = time.perf_counter()
    lineage = None
    if config.training.tuning.enabled and config.source is None and config.engine.kind == "dask":
        raise ValueError("--tune: the hyperparameter search runs on the local engine; use --engine local")
    if config.source is not None:
        from training.byo import table_summary_lines, train_from_table

        result, report = train_from_table(config, cv_folds)
        tables = {"source_table": result.extra["train_frame"]}
        lines = report.lines() + table_summary_lines(result)
    else:
        if cv_folds:
            raise ValueError(
                "--cv: cross-validation is for a table brought with `source:`; bank snapshots are split out of time"
            )
        tables = None
        if config.engine.kind == "dask":
            from churn.cluster import dask_client
            from training.distributed import train_models_dask

            with dask_client(config.engine) as client:
                result, counts, digest = train_models_dask(config, client)
            lineage = (counts, digest)
        else:
            from churn.engine import partition_runner
            from training.rows import training_rows

            with partition_runner(config) as runner:
                rows = training_rows(config, runner)
            lineage = rows.lineage
            result = train_on_rows(rows, config)
            del rows
        lines = summary_lines(result)
    if "tuning" in result.extra:
        from training.tuning_report import search_lines

        lines += search_lines(result.extra["tuning"], result.metrics)
    run_id, version = log_training_run(result, config, tables, lineage=lineage)
    if metrics_json is not None:
        payload = as_float_dict(result.metrics) | {"model_version": version, "run_id": run_id}
        if "data_report" in result.extra:
            payload["data_report"] = result.extra["data_report"]
        metrics_json.parent.mkdir(parents=True, exist_ok=True)
        metrics_json.write_text(json.dumps(payload, indent=2))
    lines += [
        f"mlflow run            {run_id} ({config.mlflow.tracking_uri})",
        f"registered            {config.mlflow.model_name} version {version}, alias challenger",
        f"took                  {time.perf_counter() - started:.1f} s",
    ]
    return TrainSummary(run_id, version, lines)


def _verdict(decision) -> str:
    if decision.promote:
        return "PROMOTED to champion"
    return "champion kept" if decision.champion_version else "NOT promoted, no champion"


def run_promotion(config: AppConfig, force: bool = False) -> list[str]:
    """Compare challenger and champion and move the `champion` alias if the challenger is better."""
    from churn.engine import partition_runner
    from training.promote import promote, read_for_promotion

    if config.source is not None:
        decision = promote(config, read_for_promotion(config), force)
    else:
        with partition_runner(config) as runner:
            decision = promote(config, read_for_promotion(config, runner), force)
    lines = [
        f"challenger            version {decision.challenger_version}",
        f"champion before       {'version ' + decision.champion_version if decision.champion_version else 'none'}",
        f"decision              {_verdict(decision)}: {decision.reason}",
    ]
    for metric in ("roc_auc", "pr_auc", "ece", "net_saving"):
        champion = decision.champion_scores.get(metric)
        lines.append(
            f"  {metric:<19} challenger {decision.challenger_scores[metric]:.4f}"
            + (f"   champion {champion:.4f}" if champion is not None else "")
        )
    for label, comparison in (
        ("uplift", decision.uplift_comparison),
        ("playbook model", decision.playbook_comparison),
    ):
        if "difference" in comparison:
            lines.append(
                f"  {label + ' Qini':<19} challenger {comparison['challenger']:.4f}   champion "
                f"{comparison['champion']:.4f} on the same {comparison['rows']:,} held-out campaign rows "
                f"({', '.join(comparison['months'])}; difference {comparison['difference']:+.4f}, "
                f"interval {comparison['low']:+.4f} .. {comparison['high']:+.4f})"
                + (
                    f"; {comparison['disagreed']:,} rows where the two chose differently left out"
                    if "disagreed" in comparison
                    else ""
                )
            )
        elif comparison:
            lines.append(f"  {label:<19} {comparison['note']}")
    for side, words in decision.valuation.items():
        lines.append(f"  {side + ' list':<19} {words}")
    if decision.list_change:
        changes = "the list changes" if decision.promote else "would have changed the list"
        lines.append(f"  {'list change':<19} {decision.list_change} ({changes})")
    return lines
