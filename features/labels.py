"""Labels: who churns within the horizon, and which product they open next."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from features.build import active_customers
from features.settings import LabelConfig

NO_PRODUCT = "none"


def _month_index(dates: pd.Series) -> np.ndarray:
    return (dates.dt.year * 12 + dates.dt.month - 1).to_numpy()


def churn_dates(
    tables: Mapping[str, pd.DataFrame],
    rule: LabelConfig,
    months: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> pd.Series:
    """The date each customer churned, by either rule, over the whole history (NaT if never).

    A customer churns on the earlier of:
    - the day their last open product closed (every product closed), or
    - the first day of the first month whose month-end assets (deposits + investments) fell below
      `drain_ratio` of the average of the three month-ends before, and stayed below that level for
      the next `stay_months` month-ends (a month-end without a balance row, after closing, counts
      as zero). Customers whose reference average is below `min_reference_assets` cannot drain.

    `months` (first and last month-end of the whole bank's balances) is given when `tables` hold
    one partition of the customers, so every partition reads the same calendar as the whole bank.
    """
    customers = tables["customers"]["customer_id"]
    holdings = tables["holdings"]
    # the last closing date of a customer whose every product is closed; NaT while one is open
    by_customer = holdings.groupby("customer_id")["closed"]
    all_closed = by_customer.max().where(~holdings["closed"].isna().groupby(holdings["customer_id"]).any())

    balances = tables["balances"]
    ids = pd.Index(np.sort(customers.to_numpy()))
    closed_date = all_closed.reindex(ids)
    if balances.empty:
        return closed_date.rename("churn_date").rename_axis("customer_id")
    month = _month_index(balances["month_end"])
    if months is not None:
        first, last = _month_index(pd.Series(pd.to_datetime(list(months))))
    else:
        first, last = month.min(), month.max()
    width = last - first + 1
    assets = np.full((len(ids), width), np.nan)
    rows = ids.get_indexer(balances["customer_id"].to_numpy())
    known = rows >= 0
    assets[rows[known], month[known] - first] = (balances["deposits"] + balances["investments"]).to_numpy()[
        known
    ]
    # after a customer's last balance row (account closed) their assets are zero
    seen = ~np.isnan(assets)
    last_seen = np.where(seen.any(axis=1), width - 1 - np.argmax(seen[:, ::-1], axis=1), -1)
    after_last = np.arange(width)[None, :] > last_seen[:, None]
    assets = np.where(after_last & (last_seen[:, None] >= 0), 0.0, assets)

    drained = np.zeros_like(assets, dtype=bool)
    for t in range(3, width - rule.stay_months):
        reference = assets[:, t - 3 : t].mean(axis=1)  # NaN if any of the three is missing
        threshold = rule.drain_ratio * reference
        below = assets[:, t] < threshold
        for k in range(1, rule.stay_months + 1):
            below &= assets[:, t + k] < threshold
        drained[:, t] = below & (reference >= rule.min_reference_assets)
    has_drain = drained.any(axis=1)
    drain_month = first + np.argmax(drained, axis=1)
    drain_date = pd.Series(pd.NaT, index=ids, dtype="datetime64[ns]")
    years, months = np.divmod(drain_month[has_drain], 12)
    # dated at the start of the month in which assets fell, so a 90-day horizon from any
    # first-of-month as-of covers exactly three months whatever their lengths
    drain_date.iloc[np.flatnonzero(has_drain)] = pd.to_datetime(
        {"year": years, "month": months + 1, "day": 1}
    )
    return (
        pd.concat([drain_date, closed_date], axis=1)
        .min(axis=1)
        .rename("churn_date")
        .rename_axis("customer_id")
    )


def last_confirmable_as_of(tables: Mapping[str, pd.DataFrame], rule: LabelConfig) -> pd.Timestamp:
    """The latest first-of-month as-of date whose churn labels the data can fully confirm.

    A drain in the horizon's last month shows at that month's end and needs `stay_months`
    further month-ends in the data to be confirmed.
    """
    return confirmable_as_of(tables["balances"]["month_end"].max(), rule)


def confirmable_as_of(data_end: pd.Timestamp, rule: LabelConfig) -> pd.Timestamp:
    """`last_confirmable_as_of` from the data's last month-end alone."""
    data_end = pd.Timestamp(data_end)
    candidate = data_end.normalize().replace(day=1)
    while True:
        last_horizon_day = candidate + pd.Timedelta(days=rule.horizon_days - 1)
        last_event_month_end = last_horizon_day + pd.offsets.MonthEnd(0)
        needed = last_event_month_end + pd.offsets.MonthEnd(rule.stay_months)
        if needed <= data_end:
            return candidate
        candidate -= pd.offsets.MonthBegin(1)


def build_labels(
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp | str,
    rule: LabelConfig,
    products: tuple[str, ...],
    churn_date: pd.Series | None = None,
) -> pd.DataFrame:
    """Churn and next-product labels for customers active at `as_of` who had not churned yet.

    Args:
        tables: validated raw tables.
        as_of: the snapshot date.
        rule: horizon and churn-rule parameters.
        products: the catalogue, in the order that breaks ties between same-day openings.
        churn_date: `churn_dates(tables, rule)`, passed in when labelling many snapshots.

    Returns:
        A frame indexed by `customer_id` with `churn` (0/1), `churn_date`, and `next_product`
        (the first catalogue product opened within the horizon that was not held at `as_of`,
        or "none").
    """
    as_of = pd.Timestamp(as_of).normalize()
    horizon_end = as_of + pd.Timedelta(days=rule.horizon_days)
    if churn_date is None:
        churn_date = churn_dates(tables, rule)
    active = active_customers(tables, as_of)["customer_id"]
    dates = churn_date.reindex(active.to_numpy())
    not_yet = ~(dates < as_of)
    dates = dates[not_yet.to_numpy()]
    labels = pd.DataFrame({"churn_date": dates})
    labels["churn"] = ((dates >= as_of) & (dates < horizon_end)).astype(np.int64)

    holdings = tables["holdings"]
    held = holdings[(holdings["opened"] < as_of) & ~(holdings["closed"] < as_of)]
    held_pairs = pd.MultiIndex.from_frame(held[["customer_id", "product"]])
    opened = holdings[(holdings["opened"] >= as_of) & (holdings["opened"] < horizon_end)]
    opened = opened[~pd.MultiIndex.from_frame(opened[["customer_id", "product"]]).isin(held_pairs)]
    opened = opened[opened["product"].isin(products)]
    # a tie (two products opened the same day) goes to the catalogue's order, whatever the column's
    # dtype (a categorical product column would map to a categorical rank sorted by its categories)
    rank = opened["product"].astype(str).map({p: k for k, p in enumerate(products)}).to_numpy(dtype=np.int64)
    first = (
        opened.assign(rank=rank)
        .sort_values(["customer_id", "opened", "rank"], kind="stable")
        .drop_duplicates("customer_id")
    )
    labels["next_product"] = (
        first.set_index("customer_id")["product"].astype(object).reindex(labels.index).fillna(NO_PRODUCT)
    )
    labels.index.name = "customer_id"
    return labels[["churn", "churn_date", "next_product"]]


def drained_before(
    tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp | str, rule: LabelConfig
) -> pd.Series:
    """Customers whose last month-end before `as_of` already shows the drain (point in time).

    The label's drain rule without its confirmation months (which lie in the future): assets at
    the last month-end below `drain_ratio` of the average of the three before, from a reference
    of at least `min_reference_assets`; or whose drain the label's rule confirmed before `as_of`.
    Such customers have already left in all but name.

    Returns:
        A boolean Series indexed by customer id (customers without four month-ends are False).
    """
    as_of = pd.Timestamp(as_of)
    balances = tables["balances"]
    last = as_of - pd.offsets.MonthEnd(1)
    recent = balances[
        (balances["month_end"] <= last) & (balances["month_end"] > last - pd.offsets.MonthEnd(4))
    ]
    assets = (recent["deposits"] + recent["investments"]).to_numpy()
    lag = (
        (last.year - recent["month_end"].dt.year) * 12 + last.month - recent["month_end"].dt.month
    ).to_numpy()
    frame = pd.DataFrame({"customer_id": recent["customer_id"].to_numpy(), "lag": lag, "assets": assets})
    wide = frame.pivot_table(index="customer_id", columns="lag", values="assets", aggfunc="first")
    wide = wide.reindex(columns=range(4))
    reference = wide[[1, 2, 3]].mean(axis=1, skipna=False)
    drained = (wide[0] < rule.drain_ratio * reference) & (reference >= rule.min_reference_assets)
    # and those whose drain the label's rule already confirmed on month-ends before `as_of` (an
    # account emptied months ago, kept open with nothing in it, is not a customer to retain)
    past = {**tables, "balances": balances[balances["month_end"] <= last]}
    gone = churn_dates(past, rule) < as_of
    drained = drained.reindex(drained.index.union(gone.index), fill_value=False) | gone.reindex(
        drained.index.union(gone.index), fill_value=False
    )
    return drained.fillna(False).astype(bool)
