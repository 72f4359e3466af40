"""`churn report`: the churn report for bank management as files, plots and an MLflow run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from markupsafe import Markup

from churn.config import AppConfig
from monitoring.churn_report import ChurnReport, combine_report, report_partition

EXPERIMENT = "churn-reports"


def _plots(report: ChurnReport, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def monthly_chart(months: pd.Index, name: str, ylabel: str, draw) -> None:
        figure, axis = plt.subplots(figsize=(9, 3.6))
        x = np.arange(len(months))  # positions, not strings: matplotlib would parse "2026-08" as a date
        legend_columns = draw(axis, x)
        axis.set_ylabel(ylabel)
        axis.legend(frameon=False, ncols=legend_columns, fontsize=8)
        axis.set_xticks(x, [f"{m:%Y-%m}" for m in months])
        axis.tick_params(axis="x", labelrotation=45, labelsize=8)
        figure.tight_layout()
        for suffix in ("svg", "png"):
            figure.savefig(out / f"{name}.{suffix}")
        plt.close(figure)

    by_kind = report.by_month_and_kind()

    def kinds(axis, x) -> int:
        bottom = None
        for kind, colour in zip(by_kind.columns, ("#c0392b", "#2e86c1", "#7f8c8d", "#d5d8dc"), strict=True):
            axis.bar(x, by_kind[kind], bottom=bottom, label=kind.replace("_", " "), color=colour)
            bottom = by_kind[kind] if bottom is None else bottom + by_kind[kind]
        return 4

    monthly = report.monthly

    def accounts(axis, x) -> int:
        axis.bar(x, monthly["gained"], color="#27ae60", label="gained")
        axis.bar(x, -monthly["lost"], color="#c0392b", label="lost")
        axis.plot(x, monthly["net"], color="#222", marker="o", label="net change")
        axis.axhline(0, color="#999", linewidth=0.8)
        return 3

    monthly_chart(by_kind.index, "churn_by_type", "customers lost", kinds)
    monthly_chart(monthly.index, "accounts", "customers", accounts)


def write_report(report: ChurnReport, out: Path) -> Path:
    """The page, its plots and every table as CSV into `out`."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "by_month_and_kind": report.by_month_and_kind().rename(index=lambda m: f"{m:%Y-%m}"),
        "monthly": report.monthly.rename(index=lambda m: f"{m:%Y-%m}"),
        "by_cause": report.by_cause(),
        "by_region": report.by("region"),
        "by_segment": report.by("segment"),
        "by_branch": report.by("branch_id").head(20),
    }
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv")
    _plots(report, out)

    def html(table: pd.DataFrame) -> Markup:
        return Markup(table.to_html(classes="t", border=0, float_format=lambda v: f"{v:,.0f}"))

    environment = Environment(loader=PackageLoader("monitoring", "templates"), autoescape=select_autoescape())
    page = environment.get_template("churn_report.html").render(
        first=f"{report.months[0]:%Y-%m}",
        last=f"{report.months[-1]:%Y-%m}",
        own_fault=f"{report.own_fault_share:.0%}",
        own_fault_value=f"{report.own_fault_value_share:.0%}",
        lost=f"{len(report.churners):,}",
        value_lost=f"{report.churners['value'].sum():,.0f}",
        tables={name: html(table) for name, table in tables.items()},
    )
    (out / "churn_report.html").write_text(page)
    return out


def run_report(config: AppConfig, months: int = 12) -> list[str]:
    """Build the report with the champion on the configured data, write it, log it to MLflow."""
    import mlflow

    from features.partition_work import gather_configured
    from serving.registry import load_champion
    from training.tracking import configure_tracking

    bundle, version = load_champion(config)
    gathered = gather_configured(config, report_partition, broadcast={"bundle": bundle}, months=months)
    report = combine_report(gathered.parts.months, config, months, gathered.pieces)
    out = write_report(report, config.output_path / "reports" / f"{report.months[-1]:%Y-%m}")
    configure_tracking(config, experiment=EXPERIMENT)  # artifacts beside the store, not in ./mlruns
    with mlflow.start_run(run_name=f"churn report {report.months[-1]:%Y-%m}"):
        mlflow.set_tags({"model_version": version, "first_month": f"{report.months[0]:%Y-%m}"})
        mlflow.log_metrics(
            {
                "own_fault_share": report.own_fault_share,
                "own_fault_value_share": report.own_fault_value_share,
                "customers_lost": float(len(report.churners)),
                "value_lost": float(report.churners["value"].sum()),
            }
        )
        mlflow.log_artifacts(str(out), artifact_path="churn_report")
    return report.lines() + [
        f"written to            {out} (churn_report.html, plots, CSV) and MLflow {EXPERIMENT}"
    ]
