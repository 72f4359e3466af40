"""Proof from the control group: what the bank's retention campaigns actually kept.

Every campaign holds back a random control group, and within a campaign the action each customer
got was drawn at random, so within one campaign its controls are a fair comparison for any slice of
its customers (an action, its owning team, a branch). Campaigns differ in whom they target and in
how many they hold back (a targeted campaign 20% of high-risk customers, the exploration draw half
of a broad one), so a slice that spans campaigns (all campaigns, a month, a branch, an action) is
judged campaign by campaign and the differences are averaged, weighted by each campaign's contacted
customers: pooling every contacted customer against every control would compare risk levels, not
contact against none.

For each slice whose 90-day horizon has ended: churn rate of the contacted and of their controls
(the controls' rates weighted as the contacted are), the difference with a 95% interval (normal,
per-campaign variances with one churner and one stayer added per side), the incremental customers
kept (difference x contacted), the value kept (the same on value lost per customer), the cost of
the contacts, the net value and the return on spend. `compared` counts the contacted customers whose
campaign has controls in the slice; the effect measured on them is applied to all the slice's
contacted. Fewer than `min_control` such controls (or contacted) is reported as too few for a
conclusion, never hidden.

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
MIN_SIDE = 2  # contacted and control customers a campaign needs in a slice to be compared there


def _strata(group: pd.DataFrame) -> pd.DataFrame:
    """Per campaign of the slice with at least `MIN_SIDE` contacted and `MIN_SIDE` control customers
    in it: their counts, churners, the mean value lost and its variance, with one churner and one
    stayer added per side for the variances (`a_t`, `a_c`), so that a small campaign with no
    churners keeps its uncertainty; the value lost's variance is at least that of the same
    churn-rate uncertainty on the side's mean squared value."""
    lost = group["value"].to_numpy(dtype=float) * group["churn"].to_numpy(dtype=float)
    stats = (
        group.assign(lost=lost, value_sq=group["value"].to_numpy(dtype=float) ** 2)
        .assign(arm=np.where(group["control"], "c", "t"))
        .groupby(["campaign", "arm"], sort=True, observed=True)
        .agg(
            n=("churn", "size"),
            churn=("churn", "sum"),
            lost=("lost", "mean"),
            lost_var=("lost", "var"),
            value_sq=("value_sq", "mean"),
        )
        .unstack("arm")
    )
    stats.columns = [f"{stat}_{arm}" for stat, arm in stats.columns]
    if not {"n_t", "n_c"} <= set(stats.columns):  # no contacted or no controls in the slice
        stats = pd.DataFrame(
            columns=[f"{s}_{a}" for s in ("n", "churn", "lost", "lost_var", "value_sq") for a in "tc"]
        )
    stats = stats[(stats["n_t"] >= MIN_SIDE) & (stats["n_c"] >= MIN_SIDE)].astype(float)
    for arm in "tc":
        a = (stats[f"churn_{arm}"] + 1) / (stats[f"n_{arm}"] + 2)
        stats[f"a_{arm}"] = a
        stats[f"lost_var_{arm}"] = np.maximum(
            stats[f"lost_var_{arm}"].fillna(0.0), stats[f"value_sq_{arm}"] * a * (1 - a)
        )
    return stats


def _slice(group: pd.DataFrame, min_control: int) -> dict[str, float | str]:
    treated, control = group[~group["control"]], group[group["control"]]
    n_t, n_c = len(treated), len(control)
    out: dict[str, float | str] = {"contacted": n_t, "controls": n_c, "cost": float(treated["cost"].sum())}
    s = _strata(group)
    compared_t, compared_c = int(s["n_t"].sum()), int(s["n_c"].sum())
    out["compared"] = compared_t
    if compared_c < min_control or compared_t < min_control:
        # the contacted customers' own rate; the controls' pooled rate would compare risk levels
        out["churn_rate_contacted"] = treated["churn"].mean() if n_t else np.nan
        out["churn_rate_control"] = np.nan
        out["verdict"] = (
            f"too few {'control customers' if compared_c < min_control else 'contacts'} for a conclusion"
        )
        return out
    # each campaign against its own controls, weighted by its contacted customers: campaigns hold
    # back different shares (a targeted campaign 20%, the exploration half) of customers at
    # different risk, so pooling every contacted against every control would compare risk levels
    w = (s["n_t"] / compared_t).to_numpy()
    pt, pc = (s["churn_t"] / s["n_t"]).to_numpy(), (s["churn_c"] / s["n_c"]).to_numpy()
    at, ac = s["a_t"], s["a_c"]  # the pseudo-count rates of the variances (`_strata`)
    var_t = (w**2 * (at * (1 - at) / s["n_t"]).to_numpy()).sum()
    var_c = (w**2 * (ac * (1 - ac) / s["n_c"]).to_numpy()).sum()
    rate_t, rate_c = float(w @ pt), float(w @ pc)
    se_t, se_c, se = math.sqrt(var_t), math.sqrt(var_c), math.sqrt(var_t + var_c)
    d = rate_c - rate_t
    low, high = d - Z * se, d + Z * se
    dv = float(w @ (s["lost_c"] - s["lost_t"]).to_numpy())
    half_v = Z * math.sqrt(float((w**2 * (s["lost_var_c"] / s["n_c"] + s["lost_var_t"] / s["n_t"])).sum()))
    # the effect measured on the compared customers, applied to all the slice's contacted
    value_kept = dv * n_t
    out |= {
        "churn_rate_contacted": rate_t,
        "churn_rate_contacted_low": max(rate_t - Z * se_t, 0.0),
        "churn_rate_contacted_high": min(rate_t + Z * se_t, 1.0),
        "churn_rate_control": rate_c,
        "churn_rate_control_low": max(rate_c - Z * se_c, 0.0),
        "churn_rate_control_high": min(rate_c + Z * se_c, 1.0),
        "difference_se": se,
        "difference": d,
        "difference_low": low,
        "difference_high": high,
        "incremental_customers": d * n_t,
        "incremental_customers_low": low * n_t,
        "incremental_customers_high": high * n_t,
        "value_kept": value_kept,
        "value_kept_low": (dv - half_v) * n_t,
        "value_kept_high": (dv + half_v) * n_t,
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
    out["campaign"]["month"] = rows.groupby("campaign", sort=True)["month"].max()
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


__all__ = ["headline", "impact_tables"]
