"""The monitoring run's view of what the campaigns kept: the latest `churn impact` figures, and an
alert for every action or campaign whose contacted customers churned more than their own controls
(the interval of the difference below zero: the contacts push customers away)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from scipy.stats import norm

from monitoring.reference import Alert
from serving.list_summary import IMPACT_COLUMNS, latest_impact_folder

HARM = "pushed customers away"
# the list page's impact columns, and what judging them needs
FIGURES = [*IMPACT_COLUMNS, "compared", "difference", "difference_low", "difference_high", "return_on_spend"]


COUNTS = {"contacted", "controls", "compared"}


def _plain(name: str, value: Any) -> Any:
    if isinstance(value, str):
        return value
    if pd.isna(value):
        return None
    return int(value) if name in COUNTS else float(value)


def impact_check(output_dir: Path) -> tuple[dict[str, Any] | None, list[Alert]]:
    """(the overall figures of the latest impact run with its month and the harmful slices, the
    alerts); (None, []) when `churn impact` never ran."""
    folder = latest_impact_folder(output_dir)
    if folder is None:
        return None, []
    overall = pd.read_csv(folder / "overall.csv", index_col=0).iloc[0]
    figures: dict[str, Any] = {"month": folder.name} | {
        name: _plain(name, overall[name]) for name in FIGURES if name in overall.index
    }
    judged = []  # (kind, name, row): every action, and the campaigns of the latest month
    for kind in ("action", "campaign"):
        path = folder / f"{kind}.csv"
        table = pd.read_csv(path, index_col=0) if path.exists() else pd.DataFrame()
        if table.empty or "difference_se" not in table.columns:
            continue
        if kind == "campaign":  # an old campaign was judged (and alerted on) when it was new
            table = table[table["month"].astype(str) == table["month"].astype(str).max()]
        table = table[table["difference_se"].notna()]
        judged += [(kind, name, row) for name, row in table.iterrows()]
    # one-sided at 2.5% across every slice tested (Bonferroni): tested one by one, some slice of a
    # bank where nothing harms would look harmful on most runs
    z = float(norm.ppf(1 - 0.025 / max(len(judged), 1)))
    alerts = [
        Alert(
            kind="campaign_harm",
            subject=f"{kind} {name}",
            value=float(row["difference"]),
            threshold=0.0,
            features=[],
            message=(
                f"{kind} {name}: its {int(row['contacted'])} contacted customers churned "
                f"{-100 * row['difference']:.1f} points more than their controls (95% interval "
                f"{-100 * row['difference_high']:.1f} .. {-100 * row['difference_low']:.1f}, and beyond "
                f"chance across the {len(judged)} slices tested): the contacts push customers away; "
                "review the playbook's rule for it"
            ),
        )
        for kind, name, row in judged
        if row["difference"] + z * row["difference_se"] < 0
    ]
    figures["harmful"] = [a.subject for a in alerts]
    return figures, alerts


def impact_lines(figures: dict[str, Any] | None) -> list[str]:
    if figures is None:
        return ["impact                no campaign judged yet (`churn impact`)"]
    if figures.get("difference") is None:
        return [f"impact (to {figures['month']})   {figures['verdict']}"]
    harmful = figures["harmful"]
    return [
        f"impact (to {figures['month']})   kept {figures['incremental_customers']:,.1f} customers (95% interval "
        f"{figures['incremental_customers_low']:,.1f} .. {figures['incremental_customers_high']:,.1f}), "
        f"net value {figures['net_value']:,.0f}; "
        + (
            f"pushing customers away: {', '.join(harmful)}"
            if harmful
            else "no action or campaign pushed customers away"
        )
    ]


__all__ = ["impact_check", "impact_lines"]
