"""`benchmarks.uplift_settings`: serving-time uplift settings side by side on one bank."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.uplift_settings import list_figures, paired_difference, parse_variant
from churn.config import load_config


@pytest.fixture(scope="module")
def uplift():
    return load_config().uplift


def test_parse_variant__each_value_read_as_the_settings_type(uplift):
    name, settings = parse_variant(
        "F7=take_up_floor=0.7,playbook_effect=per_action,candidate_saving=none", uplift
    )
    assert name == "F7"
    assert settings == {"take_up_floor": 0.7, "playbook_effect": "per_action", "candidate_saving": None}
    assert isinstance(settings["take_up_floor"], float)
    assert parse_variant("as-configured=", uplift) == ("as-configured", {})


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("F7=take_up_flor=0.7", "'take_up_flor' is not an uplift setting"),
        ("F7=take_up_floor", "'take_up_floor' is not an uplift setting"),
        ("=take_up_floor=0.7", "NAME=key=value"),
        ("configured=take_up_floor=0.7", "a list the study always builds"),
    ],
)
def test_parse_variant__an_unknown_setting_or_a_missing_value_is_named(uplift, text, said):
    with pytest.raises(ValueError, match=said):
        parse_variant(text, uplift)


@pytest.mark.parametrize(
    "text", ["F=take_up_floor=high", "F=take_up_floor=7", "F=take_up_floor=none", "F=playbook_effect=pooledd"]
)
def test_parse_variant__a_value_the_config_would_refuse_is_refused_with_its_setting(uplift, text):
    with pytest.raises(ValueError, match=text.split("=")[1]):
        parse_variant(text, uplift)


def test_list_figures__contacts_net_value_and_the_planted_dogs_among_the_contacts():
    rows = pd.DataFrame(
        {
            "contact": pd.array([True, True, False, None], dtype="boolean"),
            "action": ["call", None, "call", "call"],
        },
        index=pd.Index([1, 2, 3, 4], name="customer_id"),
    )
    savings = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "action": ["call", "retention_call", "call"],
            "saved": [0.1, 0.2, 0.5],
            "moved": [0.1, 0.2, 0.5],
            "value": [1_000.0, 500.0, 9_000.0],
            "net": [60.0, 80.0, 4_460.0],
        }
    )
    got = list_figures(rows, savings, pd.Index([2, 3]), seeds=10)
    assert got["contacted"] == 2 and got["net_value"] == pytest.approx(140.0)
    assert got["sleeping_dogs"] == 1, "customer 3 is a dog but not contacted"
    assert got["net_value_se"] > 0


def test_paired_difference__shared_contacts_cancel_and_add_no_error():
    savings = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4],
            "action": ["call"] * 4,
            "saved": [0.1, 0.2, 0.5, 0.3],
            "moved": [0.1, 0.2, 0.5, 0.3],
            "value": [1_000.0, 500.0, 9_000.0, 200.0],
            "net": [60.0, 80.0, 4_460.0, 20.0],
        }
    )
    a = pd.DataFrame({"customer_id": [1, 2, 3], "action": ["call"] * 3})
    b = pd.DataFrame({"customer_id": [3, 4], "action": ["call"] * 2})
    difference, se = paired_difference(savings, a, b, seeds=10)
    assert difference == pytest.approx(60.0 + 80.0 - 20.0)
    # customer 3, in both lists, carries most of each list's error and none of the difference's
    alone = [
        list_figures(rows.set_index("customer_id").assign(contact=True), savings, pd.Index([]), 10)
        for rows in (a, b)
    ]
    assert se < min(f["net_value_se"] for f in alone) and se > 0
    assert paired_difference(savings, a, a, seeds=10) == (0.0, 0.0)
