"""Proof from the control group: what the bank's retention campaigns actually kept.

Every campaign holds back a random control group, and within a campaign the action each customer
got was drawn at random, so for any slice of a campaign's customers (an action, its owning team,
a branch, a month) the campaign's controls in the same slice are a fair comparison. For each
slice whose 90-day horizon has ended: churn rate of the contacted and of the controls with 95%
intervals, the difference (Newcombe's interval from the two Wilson intervals), the incremental
customers kept (difference x contacted), the value kept (the same on value lost per customer,
normal interval), the cost of the contacts, the net value and the return on spend. Fewer than
`min_control` controls (or contacted) is reported as too few for a conclusion, never hidden.

Intention to treat: a contacted customer counts whether the call reached them or not (the
controls were not chosen by reachability); the reached / accepted split is shown beside it, as
description, not as a causal effect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

Z = 1.959964


def wilson(successes: float, n: float) -> tuple[float, float]:
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


def newcombe(churn_c: float, n_c: float, churn_t: float, n_t: float) -> tuple[float, float, float]:
    """Difference of churn rates, control minus contacted (positive: the contacts kept customers),
    with Newcombe's hybrid score interval."""
    pc, pt = churn_c / n_c, churn_t / n_t
    lc, uc = wilson(churn_c, n_c)
    lt, ut = wilson(churn_t, n_t)
    d = pc - pt
    return d, d - math.sqrt((pc - lc) ** 2 + (ut - pt) ** 2), d + math.sqrt((uc - pc) ** 2 + (pt - lt) ** 2)


def _slice(group: pd.DataFrame, min_control: int) -> dict[str, float | str]:
    treated, control = group[~group["control"]], group[group["control"]]
    n_t, n_c = len(treated), len(control)
    out: dict[str, float | str] = {
        "contacted": n_t,
        "controls": n_c,
        "cost": float(treated["cost"].sum()),
        "churn_rate_contacted": treated["churn"].mean() if n_t else np.nan,
        "churn_rate_control": control["churn"].mean() if n_c else np.nan,
    }
    if n_c < min_control or n_t < min_control:
        out["verdict"] = (
            f"too few {'control customers' if n_c < min_control else 'contacts'} for a conclusion"
        )
        return out
    d, low, high = newcombe(control["churn"].sum(), n_c, treated["churn"].sum(), n_t)
    lost_t, lost_c = treated["value"] * treated["churn"], control["value"] * control["churn"]
    dv = lost_c.mean() - lost_t.mean()
    se = math.sqrt(lost_c.var(ddof=1) / n_c + lost_t.var(ddof=1) / n_t) if n_c > 1 and n_t > 1 else np.nan
    value_kept = dv * n_t
    out |= {
        "churn_rate_contacted_low": wilson(treated["churn"].sum(), n_t)[0],
        "churn_rate_contacted_high": wilson(treated["churn"].sum(), n_t)[1],
        "churn_rate_control_low": wilson(control["churn"].sum(), n_c)[0],
        "churn_rate_control_high": wilson(control["churn"].sum(), n_c)[1],
        "difference": d,
        "difference_low": low,
        "difference_high": high,
        "incremental_customers": d * n_t,
        "incremental_customers_low": low * n_t,
        "incremental_customers_high": high * n_t,
        "value_kept": value_kept,
        "value_kept_low": (dv - Z * se) * n_t,
        "value_kept_high": (dv + Z * se) * n_t,
        "net_value": value_kept - out["cost"],
        "return_on_spend": (value_kept - out["cost"]) / out["cost"] if out["cost"] > 0 else np.nan,
        "verdict": "kept customers"
        if low > 0
        else "pushed customers away"
        if high < 0
        else "no effect the controls can show",
    }
    return out


def impact_tables(rows: pd.DataFrame, min_control: int = 30) -> dict[str, pd.DataFrame]:
    """`rows`: one per campaign customer with `campaign`, `month`, `action` (None for controls),
    `team`, `branch_id`, `control`, `churn`, `value`, `cost`, `outcome`. Returns one table per
    slice kind (`overall`, `campaign`, `action`, `team`, `branch`, `month`) and `outcomes`."""
    out: dict[str, pd.DataFrame] = {}
    out["overall"] = pd.DataFrame([_slice(rows, min_control) | {"slice": "all campaigns"}]).set_index("slice")
    for kind, column in (("campaign", "campaign"), ("month", "month"), ("branch", "branch_id")):
        out[kind] = pd.DataFrame(
            {key: _slice(group, min_control) for key, group in rows.groupby(column, sort=True)}
        ).T.rename_axis(kind)
    # an action's (or team's) customers against the controls of the campaigns they were in
    for kind, column in (("action", "action"), ("team", "team")):
        slices = {}
        treated = rows[~rows["control"]]
        for key, group in treated.groupby(column, sort=True):
            controls = rows[rows["control"] & rows["campaign"].isin(group["campaign"].unique())]
            slices[key] = _slice(pd.concat([group, controls]), min_control)
        out[kind] = pd.DataFrame(slices).T.rename_axis(kind)
    contacted = rows[~rows["control"]]
    out["outcomes"] = (
        contacted.groupby("outcome", sort=True)
        .agg(customers=("churn", "size"), churn_rate=("churn", "mean"))
        .rename_axis("outcome")
    )
    return out


def headline(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    o = tables["overall"].iloc[0]
    lines = [
        f"campaigns judged      {len(tables['campaign'])}: {int(o['contacted'])} contacted, {int(o['controls'])} controls"
    ]
    if "difference" in o and pd.notna(o.get("difference")):
        lines.append(
            f"churn                 contacted {o['churn_rate_contacted']:.1%}, controls {o['churn_rate_control']:.1%}: "
            f"kept {o['incremental_customers']:,.1f} customers (95% interval {o['incremental_customers_low']:,.1f} .. "
            f"{o['incremental_customers_high']:,.1f})"
        )
        lines.append(
            f"value                 kept {o['value_kept']:,.0f} (interval {o['value_kept_low']:,.0f} .. {o['value_kept_high']:,.0f}) "
            f"for a cost of {o['cost']:,.0f}: net {o['net_value']:,.0f}, return on spend {o['return_on_spend']:+.0%}"
        )
    else:
        lines.append(f"verdict               {o['verdict']}")
    actions = tables["action"]
    judged = actions[actions["verdict"].astype(str).str.startswith(("kept", "pushed", "no effect"))]
    for action, r in judged.iterrows():
        lines.append(
            f"  {action:26s} {int(r['contacted'])} contacted: {r['verdict']} "
            f"({100 * r['difference']:+.1f} points, {100 * r['difference_low']:+.1f} .. {100 * r['difference_high']:+.1f})"
        )
    few = actions.index[~actions.index.isin(judged.index)]
    if len(few):
        lines.append(f"  too few to judge     {', '.join(few)}")
    return lines


__all__ = ["headline", "impact_tables", "newcombe", "wilson"]
