"""What the API serves from: the stored customers, loaded in chunks beside the requests, are the
customers the daily job stored, row for row, as one whole read would give them."""

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from serving.publish import append_daily_tables, clear_daily_tables
from serving.scoring import CUSTOMER_COLUMNS
from serving.service_state import load_customers
from serving.store import ServingStore
from serving.tables import CONTEXT_COLUMNS

AS_OF = pd.Timestamp("2026-10-01")
NO_CONTACTS = pd.DataFrame(
    {"contact_id": [], "customer_id": [], "ts": [], "channel": [], "control_group": [], "outcome": []}
)


@pytest.fixture(scope="module")
def customers(sample, config, products):
    features = build_features(sample.tables, AS_OF, config.features, products)
    context = sample["customers"].set_index("customer_id").reindex(features.index)
    return features, context.assign(do_not_contact=context["do_not_contact"].fillna(False).astype(bool))


def _store(url: str, features: pd.DataFrame, context: pd.DataFrame) -> ServingStore:
    store = ServingStore(url)
    with store.engine.begin() as connection:
        clear_daily_tables(connection)
        append_daily_tables(
            connection, features, context, NO_CONTACTS, AS_OF.date().isoformat(), pd.Timestamp.now()
        )
    return store


@pytest.fixture(scope="module")
def stored(customers, tmp_path_factory):
    """The sample's features and context as the daily job stores them, but the last customer's
    context row is missing (a context table written by an older job)."""
    features, context = customers
    store = _store(f"sqlite:///{tmp_path_factory.mktemp('store') / 'churn.db'}", features, context.iloc[:-1])
    yield store, features, context
    store.dispose()


def test_load_customers__chunks_give_what_one_whole_read_gives(stored, trained):
    store, features, context = stored
    bundle = trained.bundle
    whole = load_customers(store, bundle, chunk_rows=len(features) + 1)
    chunked = load_customers(store, bundle, chunk_rows=7)
    assert len(features) > 7 * 50, "many chunks"
    assert np.array_equal(chunked.ids, whole.ids)
    probe = [*features.index[::37].tolist(), 0, int(features.index.max()) + 1]
    assert chunked.position.rows_of(probe).tolist() == whole.position.rows_of(probe).tolist()
    assert np.array_equal(chunked.x, whole.x, equal_nan=True)
    assert np.array_equal(chunked.join_date, whole.join_date, equal_nan=True)
    every = np.arange(len(whole.ids))
    for column in CUSTOMER_COLUMNS:
        assert chunked.context[column][every].tolist() == whole.context[column][every].tolist(), column


def test_load_customers__every_stored_customer_with_its_own_features_and_context(stored, trained):
    store, features, context = stored
    bundle = trained.bundle
    loaded = load_customers(store, bundle, chunk_rows=7)
    assert sorted(loaded.ids.tolist()) == sorted(features.index.tolist())
    rows = loaded.position.rows_of(features.index.tolist())
    assert (loaded.ids[rows] == features.index.to_numpy()).all(), "every id finds its own row"
    assert loaded.position.get(int(features.index.max()) + 1) is None
    assert loaded.position.rows_of([0, -5]).tolist() == [-1, -1]
    expected = bundle.matrix(bundle.prepare(features.loc[loaded.ids]))
    assert np.array_equal(loaded.x, expected, equal_nan=True)
    known = [c for c in loaded.ids.tolist() if c != context.index[-1]]
    rows = [loaded.position.get(c) for c in known]
    assert {"segment", "region"} <= set(features.columns) & set(CONTEXT_COLUMNS), "names both tables have"
    for column in ("segment", "region", "branch_id", "do_not_contact"):
        assert loaded.context[column][rows].tolist() == context.loc[known, column].astype(object).tolist()
    missing = loaded.position.get(context.index[-1])
    assert loaded.context["do_not_contact"][missing] == False  # noqa: E712 (numpy bool)
    assert pd.isna(loaded.context["segment"][missing])


def test_load_customers__a_customer_stored_twice_is_refused_not_served_at_random(
    customers, trained, tmp_path
):
    features, context = customers
    twice = pd.concat([context, context.iloc[[3]]])  # one customer with two context rows
    store = _store(f"sqlite:///{tmp_path / 'churn.db'}", features, twice)
    with pytest.raises(ValueError, match="appears in 2 rows"):
        load_customers(store, trained.bundle, chunk_rows=7)
    store.dispose()


def test_load_customers__no_stored_customers_gives_an_empty_table_not_an_error(customers, trained, tmp_path):
    features, context = customers
    store = _store(f"sqlite:///{tmp_path / 'churn.db'}", features.iloc[:0], context.iloc[:0])
    loaded = load_customers(store, trained.bundle, chunk_rows=7)
    assert loaded.x.shape == (0, len(trained.bundle.feature_names))
    assert loaded.position.get(1) is None
    assert loaded.rows([])[1].shape[0] == 0
    store.dispose()


@pytest.mark.postgres
def test_load_customers__on_postgresql_the_same_as_on_sqlite(stored, customers, trained, postgres_url):
    features, context = customers
    store = _store(postgres_url, features, context.iloc[:-1])
    try:
        on_postgres = load_customers(store, trained.bundle, chunk_rows=97)
    finally:
        store.dispose()
    on_sqlite = load_customers(stored[0], trained.bundle)
    order = on_postgres.position.rows_of(on_sqlite.ids.tolist())
    assert (order >= 0).all() and len(order) == len(on_postgres.ids)
    assert np.array_equal(on_postgres.x[order], on_sqlite.x, equal_nan=True)
    every = np.arange(len(order))
    for column in CUSTOMER_COLUMNS:
        assert on_postgres.context[column][order].tolist() == on_sqlite.context[column][every].tolist(), (
            column
        )
