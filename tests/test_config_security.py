"""Configuration that refuses weak settings: production keys and database, the audit
anchor, Temporal TLS (an API key implies it; a self-hosted cluster's CA and server
name), and HSTS when cookies are Secure."""

from __future__ import annotations

import logging
import secrets

import pytest
from temporalio.service import TLSConfig

import config
from config import ProductionConfig, TestingConfig
from estuary_ops import create_app
from temporal_gateway.client import tls_config
from temporal_gateway.codec import new_key_entry

GOOD_SECRET = secrets.token_hex(32)
GOOD_AUDIT_KEY = secrets.token_urlsafe(32)
PG_URL = "postgresql+psycopg://estuary@db.internal:5432/estuary"
GOOD_PAYLOAD_KEYS = new_key_entry("prod1")


@pytest.fixture
def production_env(monkeypatch, tmp_path):
    """A complete, acceptable production environment; each test spoils one setting."""
    monkeypatch.setenv("ESTUARY_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("AUDIT_KEY", GOOD_AUDIT_KEY)
    monkeypatch.setenv("DATABASE_URL", PG_URL)
    monkeypatch.setenv("AUDIT_ANCHOR_PATH", str(tmp_path / "anchor.log"))
    monkeypatch.setenv("PAYLOAD_KEYS", GOOD_PAYLOAD_KEYS)
    for name in (
        "TEMPORAL_TLS_SERVER_CA_CERT",
        "TEMPORAL_TLS_CLIENT_CERT",
        "TEMPORAL_TLS_CLIENT_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("TEMPORAL_TASK_QUEUE_PREFIX", raising=False)
    return monkeypatch


def test_a_complete_production_environment_is_accepted(production_env):
    ProductionConfig.init()
    assert ProductionConfig.SECRET_KEY == GOOD_SECRET
    assert ProductionConfig.AUDIT_KEY == GOOD_AUDIT_KEY
    assert ProductionConfig.SQLALCHEMY_DATABASE_URI == PG_URL
    assert ProductionConfig.SESSION_COOKIE_SECURE is True


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SECRET_KEY", None, "SECRET_KEY must be set in production"),
        ("SECRET_KEY", "a", "SECRET_KEY is too weak: at least 32 random bytes"),
        ("SECRET_KEY", "a" * 64, "SECRET_KEY is too weak"),
        ("SECRET_KEY", "correcthorsebatterystaple-correcthorse", "SECRET_KEY is too weak"),
        ("SECRET_KEY", "0123456789abcdef0123456789abcdef", "SECRET_KEY is too weak"),
        ("AUDIT_KEY", None, "AUDIT_KEY must be set in production"),
        ("AUDIT_KEY", "short", "AUDIT_KEY is too weak"),
        ("AUDIT_KEY", GOOD_SECRET, "AUDIT_KEY must differ from SECRET_KEY"),
        ("DATABASE_URL", None, "DATABASE_URL must be set in production"),
        ("PAYLOAD_KEYS", None, "PAYLOAD_KEYS must be set in production"),
        ("PAYLOAD_KEYS", "prod1:c2hvcnQ=", "PAYLOAD_KEYS key 'prod1' is 5 bytes"),
        ("DATABASE_URL", "sqlite:///var/estuary.db", "DATABASE_URL must be a PostgreSQL URL"),
        ("DATABASE_URL", "mysql://db/estuary", "DATABASE_URL must be a PostgreSQL URL"),
        ("AUDIT_ANCHOR_PATH", None, "AUDIT_ANCHOR_PATH must be set in production"),
        ("TEMPORAL_TLS_SERVER_CA_CERT", "/nonexistent/ca.pem", "TEMPORAL_TLS_SERVER_CA_CERT names"),
        ("TEMPORAL_TASK_QUEUE_PREFIX", "t1", "TEMPORAL_TASK_QUEUE_PREFIX='t1' must end in"),
    ],
)
def test_production_refuses_weak_or_missing_settings(production_env, name, value, message):
    if value is None:
        production_env.delenv(name, raising=False)
    else:
        production_env.setenv(name, value)
    with pytest.raises(RuntimeError, match=message):
        create_app()


@pytest.mark.parametrize(
    "key",
    [secrets.token_hex(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)],
)
def test_generated_keys_are_strong_enough(key):
    config.check_key_strength("SECRET_KEY", key)


def test_an_api_key_turns_tls_on_unless_explicitly_disabled(caplog):
    assert tls_config({"TEMPORAL_API_KEY": "k", "TEMPORAL_TLS": None}) is True
    assert tls_config({"TEMPORAL_TLS": None}) is False
    assert tls_config({"TEMPORAL_API_KEY": "k", "TEMPORAL_TLS": False}) is False

    class PlaintextKey(TestingConfig):
        TEMPORAL_API_KEY = "k"
        TEMPORAL_TLS = False

    with caplog.at_level(logging.WARNING, logger="config"):
        config._warn_plaintext_api_key(PlaintextKey)
    assert "API key is sent in plaintext" in caplog.text


def test_tls_with_a_private_ca_and_server_name(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    got = tls_config(
        {
            "TEMPORAL_TLS": True,
            "TEMPORAL_TLS_SERVER_CA_CERT": str(ca),
            "TEMPORAL_TLS_SERVER_NAME": "temporal.internal",
        }
    )
    assert isinstance(got, TLSConfig)
    assert got.server_root_ca_cert == ca.read_bytes()
    assert got.domain == "temporal.internal"
    assert got.client_cert is None
    with pytest.raises(ValueError, match="must be given together"):
        tls_config({"TEMPORAL_TLS": True, "TEMPORAL_TLS_CLIENT_CERT": str(ca)})


def test_hsts_only_when_cookies_are_secure(app):
    assert "Strict-Transport-Security" not in app.test_client().get("/healthz").headers
    app.config["SESSION_COOKIE_SECURE"] = True
    header = app.test_client().get("/healthz").headers["Strict-Transport-Security"]
    assert header == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("prefix", ["", "t1-", "prod.", "eu_", "team:", "acme/"])
def test_a_task_queue_prefix_that_ends_in_a_separator_is_accepted(prefix):
    config.check_task_queue_prefix(prefix)


@pytest.mark.parametrize("prefix", ["t1", "prod", "estuary2"])
def test_a_task_queue_prefix_that_could_start_another_is_refused(prefix):
    # "t1" would scope the console to TaskQueue STARTS_WITH 't1': t12-payments too.
    with pytest.raises(RuntimeError, match=f"{prefix}2-"):
        config.check_task_queue_prefix(prefix)


def test_development_refuses_such_a_prefix_at_start(monkeypatch):
    monkeypatch.setattr(config.Config, "TEMPORAL_TASK_QUEUE_PREFIX", "t1")
    with pytest.raises(RuntimeError, match="must end in one of"):
        config.Config.init()
