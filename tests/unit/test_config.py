from pathlib import Path

import pytest

from churn.config import DEFAULT_CONFIG, ConfigError, load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_load_config__default_runs_on_the_sample():
    config = load_config(environ={})
    assert config.data.source == "data/sample"
    assert "current_account" in config.products
    assert config.labels.horizon_days == 90


def test_load_config__unknown_key_is_named(tmp_path):
    text = DEFAULT_CONFIG.read_text().replace("  horizon_days: 90", "  horizon_days: 90\n  horizon_dayz: 30")
    with pytest.raises(ConfigError, match=r"labels\.horizon_dayz: unknown key"):
        load_config(_write(tmp_path, text), environ={})


def test_load_config__invalid_value_names_key_and_problem(tmp_path):
    text = DEFAULT_CONFIG.read_text().replace("drain_ratio: 0.2", "drain_ratio: 1.5")
    with pytest.raises(ConfigError, match=r"labels\.drain_ratio: Input should be less than 1"):
        load_config(_write(tmp_path, text), environ={})


def test_load_config__environment_overrides_locations():
    config = load_config(
        environ={
            "CHURN_DATA_SOURCE": "postgresql+psycopg://bank/db",
            "CHURN_OUTPUT_DIR": "/srv/out",
            "CHURN_DATABASE_URL": "postgresql+psycopg://bank/scores",
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        }
    )
    assert config.data.source == "postgresql+psycopg://bank/db"
    assert config.output_dir == "/srv/out"
    assert config.database_url == "postgresql+psycopg://bank/scores"
    assert config.mlflow.tracking_uri == "http://mlflow:5000"


def test_load_config__is_frozen():
    config = load_config(environ={})
    with pytest.raises(Exception, match="frozen"):
        config.output_dir = "elsewhere"


def test_load_config__not_yaml_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "data: [unclosed"), environ={})


def test_load_config__missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_stage_code__takes_its_own_settings_without_the_application_config():
    """Pure feature, label and training code imports its stage's sections (`features.settings`,
    `training.settings`), not `churn.config`: only the jobs and the CLI compose the whole."""
    import subprocess
    import sys

    probe = (
        "import sys, features.build, features.labels, features.snapshots, features.catalog, "
        "training.models, training.tuning, serving.policy; print('churn.config' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_default_config__uplift_learns_from_take_up_and_leaves_the_least_likely_seven_tenths_uncontacted():
    """Decided together on fresh banks (docs/uplift-benchmarks.md); the YAML and the settings' own
    defaults agree, so a config file that leaves them out runs the same product."""
    from churn.retention_config import UpliftConfig

    shipped, bare = load_config(environ={}).uplift, UpliftConfig()
    assert (shipped.effect_input, shipped.take_up_floor) == ("take_up", 0.7)
    assert (bare.effect_input, bare.take_up_floor) == (shipped.effect_input, shipped.take_up_floor)
