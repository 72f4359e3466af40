import pandas as pd
import pytest

from features.schema import SCHEMAS
from features.validation import TableValidationError, validate_table, validate_tables
from tests.factories import PRODUCTS, bank

EXTRACT = pd.Timestamp("2025-12-31")


def _validate(tables, max_reject_share=1.0):
    return validate_tables(tables, extract_date=EXTRACT, products=PRODUCTS, max_reject_share=max_reject_share)


def _transactions(*rows):
    base = {"customer_id": 1, "ts": "2025-06-01 10:00", "amount": 10.0}
    return bank(transactions=[base | row for row in rows])


def test_validate_tables__clean_bank_has_no_rejects():
    result = _validate(bank(transactions=[{"customer_id": 1, "ts": "2025-06-01", "amount": 5.0}]))
    assert result.reject_counts == dict.fromkeys(SCHEMAS, 0)
    assert len(result["transactions"]) == 1


def test_validate_table__missing_column_is_fatal_and_named():
    tables = bank()
    with pytest.raises(TableValidationError, match=r"customers\.segment: required column missing"):
        _validate(tables | {"customers": tables["customers"].drop(columns="segment")})


def test_validate_table__column_of_wrong_type_is_fatal_with_examples():
    tables = _transactions({}, {})
    tables["transactions"]["amount"] = ["ten", "eleven"]
    with pytest.raises(
        TableValidationError, match=r"transactions\.amount: wrong type: no value converts to float"
    ) as info:
        _validate(tables)
    assert "ten" in str(info.value), "the message shows offending rows"


def test_validate_table__missing_table_is_fatal():
    tables = bank()
    del tables["contacts"]
    with pytest.raises(TableValidationError, match="contacts: table missing"):
        _validate(tables)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"customer_id": 99}, "customer_id: unknown customer"),
        ({"amount": -5.0}, "amount: below minimum 0"),
        ({"amount": None}, "amount: missing value"),
        ({"channel": "fax"}, "channel: not one of branch, atm, mobile, online, card"),
        ({"ts": "2026-03-01"}, "ts: after the extract date 2025-12-31"),
        ({"category": "salary", "direction": "out"}, "direction: does not match category"),
    ],
)
def test_validate_table__bad_transaction_row_is_rejected_with_reason(row, reason):
    result = _validate(_transactions({}, row))
    rejects = result.rejects["transactions"]
    assert len(result["transactions"]) == 1, "the good row stays"
    assert rejects["reason"].tolist() == [reason]


def test_validate_table__duplicate_key_rejects_every_copy():
    tables = _transactions({}, {}, {})
    tables["transactions"].loc[2, "transaction_id"] = 1
    result = _validate(tables)
    assert result.rejects["transactions"]["reason"].tolist() == ["transaction_id: duplicate key"] * 2
    assert result["transactions"]["transaction_id"].tolist() == [2]


def test_validate_table__row_with_several_problems_lists_them_all():
    result = _validate(_transactions({}, {"customer_id": 99, "amount": -1.0}))
    assert (
        result.rejects["transactions"]["reason"].item()
        == "amount: below minimum 0; customer_id: unknown customer"
    )


def test_validate_table__closed_before_opened_is_rejected():
    result = _validate(
        bank(
            holdings=[
                {"customer_id": 1, "product": "savings", "opened": "2024-01-01", "closed": "2023-01-01"}
            ]
        )
    )
    assert result.rejects["holdings"]["reason"].tolist() == ["closed: before opened"]


def test_validate_table__unknown_product_is_rejected():
    result = _validate(bank(holdings=[{"customer_id": 1, "product": "crypto", "opened": "2024-01-01"}]))
    assert result.rejects["holdings"]["reason"].str.startswith("product: not one of current_account").all()


def test_validate_tables__rejected_customer_takes_its_rows_along():
    tables = _transactions({}, {"customer_id": 2})
    tables["customers"].loc[1, "segment"] = "platinum"
    result = _validate(tables)
    assert result.rejects["customers"]["reason"].tolist() == ["segment: not one of mass, affluent, private"]
    assert result.rejects["transactions"]["reason"].tolist() == ["customer_id: unknown customer"]


def test_validate_tables__nothing_is_dropped_silently():
    tables = _transactions({}, {"amount": -1.0}, {"customer_id": 7}, {"channel": None})
    result = _validate(tables)
    assert len(result["transactions"]) + len(result.rejects["transactions"]) == len(tables["transactions"])


def test_validate_tables__too_many_rejects_stop_the_job():
    tables = _transactions({"amount": -1.0}, {"amount": -2.0}, {})
    with pytest.raises(
        TableValidationError, match=r"transactions: 2 of 3 rows rejected, above the allowed share 5%"
    ):
        _validate(tables, max_reject_share=0.05)


def test_validate_table__csv_text_is_coerced_and_trimmed():
    raw = pd.DataFrame(
        {
            "transaction_id": ["1", "2"],
            "customer_id": ["1", "1"],
            "ts": ["2025-06-01 10:00:00", "2025-06-02"],
            "amount": ["12.50", "abc"],
            "direction": [" out", "out"],
            "channel": ["card ", "card"],
            "category": ["card_spend", "card_spend"],
        }
    )
    valid, rejects = validate_table(
        raw, SCHEMAS["transactions"], extract_date=EXTRACT, products=PRODUCTS, known_customers=pd.Index([1])
    )
    assert valid["amount"].tolist() == [12.5]
    assert valid["channel"].tolist() == ["card"]
    assert rejects["reason"].tolist() == ["amount: not a valid float"]


def test_read_tables__unreadable_file_is_fatal_and_named(tmp_path):
    from features.io import SourceError, read_tables
    from tests.conftest import SAMPLE

    for path in SAMPLE.glob("*.parquet"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "balances.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(SourceError, match=r"balances: cannot read .*balances\.parquet"):
        read_tables(tmp_path)


def test_validate_table__dates_before_the_earliest_allowed_day_are_rejected_with_the_rule():
    result = _validate(_transactions({"ts": "1899-12-31 23:00"}, {"ts": "2025-06-01"}))
    assert result.reject_counts["transactions"] == 1
    assert (
        result.rejects["transactions"]["reason"].iloc[0] == "ts: before the earliest allowed date 1900-01-01"
    )


def test_validate_table__a_parquet_date_no_nanosecond_timestamp_can_hold_is_a_reject_not_a_crash(tmp_path):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    # given a Parquet file with a year-1 timestamp, read back as datetime64[us]
    pq.write_table(
        pa.table({"ts": pa.array([dt.datetime(1, 1, 1), dt.datetime(2025, 6, 1)], pa.timestamp("us"))}),
        tmp_path / "t.parquet",
    )
    read = pd.read_parquet(tmp_path / "t.parquet")["ts"]
    tables = _transactions({}, {})
    tables["transactions"]["ts"] = read
    # when validated, then
    result = _validate(tables)
    assert result.reject_counts["transactions"] == 1
    assert result.rejects["transactions"]["reason"].iloc[0] == "ts: not a valid timestamp"


def test_validate_table__rejects_never_copy_personal_attributes():
    tables = bank()
    customers = tables["customers"].copy()
    customers.loc[0, "birth_year"] = 1850  # out of range: the row is rejected for its birth year
    result = _validate(tables | {"customers": customers})
    rejects = result.rejects["customers"]
    assert rejects["reason"].tolist() == ["birth_year: below minimum 1900"]
    assert {"birth_year", "gender"}.isdisjoint(rejects.columns), (
        "the reason names the column; the value stays out"
    )
    assert rejects["customer_id"].tolist() == [customers.loc[0, "customer_id"]], (
        "the key finds the row in the source"
    )


@pytest.mark.parametrize(
    "known",
    [
        [5, 6, 7, 9, 12],  # a narrow span: the lookup table
        [5, 10**12, 3, 7],  # a wide span: the binary search
        [],
    ],
    ids=["narrow", "wide", "none"],
)
def test_known_ids__equals_pandas_isin_for_every_id(known):
    from features.validation import known_ids

    ids = pd.Series([0, 3, 5, 6, 8, 9, 12, 13, 10**12, -4, 5], dtype="int64")
    index = pd.Index(known, dtype="int64")
    assert known_ids(ids, index).tolist() == ids.isin(index).tolist()
    nullable = ids.astype("Int64").mask(ids == 8)  # a missing id: pandas' own isin decides
    assert known_ids(nullable, index).tolist() == nullable.isin(index).tolist()


def test_validate_tables__categories_no_valid_row_uses_are_dropped_and_the_values_kept():
    rows = [{"channel": c} for c in ("online", "branch", "fax", "card", "branch")]  # "fax" is rejected
    tables = _transactions(*rows)
    tx = tables["transactions"]
    tx["channel"] = pd.Categorical(
        tx["channel"], categories=["card", "fax", "atm", "branch", "mobile", "online"]
    )
    result = _validate(tables)["transactions"]["channel"]
    assert list(result.cat.categories) == ["card", "branch", "online"]  # the order kept
    assert result.astype(object).tolist() == ["online", "branch", "card", "branch"]
