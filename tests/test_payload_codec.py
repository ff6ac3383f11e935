"""Payload encryption (temporal_gateway/codec.py) and the console's codec endpoint.

Unit tests of the codec and its keys; an end-to-end run whose raw history (read with no
codec) holds no name, email or note in clear while the console shows them decoded; the
endpoint's protocol, auth and CORS.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from config import Config
from temporal_gateway.codec import (
    ENCODED_FAILURE_MESSAGE,
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadDecryptionError,
    PayloadKeyError,
    data_converter,
    decode_in_place,
    new_key_entry,
    parse_keys,
)
from tests.console.read_support import login

K1 = new_key_entry("k1")
K2 = new_key_entry("k2")
UI_ORIGIN = "http://127.0.0.1:8233"


@dataclass
class Note:
    practitioner_email: str
    text: str


def plain(value: object) -> Payload:
    return DataConverter.default.payload_converter.to_payloads([value])[0]


# --- keys --------------------------------------------------------------------------------


def test_one_key_is_current_without_naming_it():
    ring = parse_keys(K1)
    assert ring.current == "k1" and len(ring.keys["k1"]) == 32


@pytest.mark.parametrize(
    ("raw", "current", "says"),
    [
        ("", None, "PAYLOAD_KEYS is empty"),
        ("k1", None, "entry 1 must look like id:base64key"),
        ("bad id:" + base64.b64encode(b"x" * 32).decode(), None, "key id 'bad id'"),
        ("k1:not*base64", None, "key 'k1' is not valid base64"),
        ("k1:" + base64.b64encode(b"short").decode(), None, "is 5 bytes"),
        (f"{K1},{K1}", None, "names key id 'k1' twice"),
        (f"{K1},{K2}", None, "PAYLOAD_KEY_ID must name the current key"),
        (f"{K1},{K2}", "k3", "PAYLOAD_KEY_ID 'k3' is not one of the ids"),
    ],
)
def test_bad_key_settings_are_refused_with_the_reason(raw, current, says):
    with pytest.raises(PayloadKeyError, match=says.replace("(", r"\(")):
        parse_keys(raw, current)


def test_malformed_keys_stop_the_app_from_starting(monkeypatch):
    class Broken(Config):
        SECRET_KEY = "not-generated"  # so init() writes no secret key file
        PAYLOAD_KEYS = "k1:abc"

    with pytest.raises(RuntimeError, match=r"is not valid base64|bytes"):
        Broken.init()


def test_dev_key_is_generated_once_into_the_var_dir(tmp_path, monkeypatch):
    import config

    monkeypatch.setattr(config, "VAR_DIR", tmp_path)
    first = config._dev_payload_keys()
    assert first == config._dev_payload_keys()
    assert parse_keys(first).current == "dev1"
    assert (tmp_path / "payload_keys").stat().st_mode & 0o077 == 0


def test_production_refuses_to_start_without_payload_keys(monkeypatch, tmp_path):
    import secrets

    import config

    # Everything else production asks for is there, so the refusal is about the keys.
    monkeypatch.setenv("SECRET_KEY", secrets.token_hex(32))
    monkeypatch.setenv("AUDIT_KEY", secrets.token_hex(32))
    monkeypatch.setenv("AUDIT_ANCHOR_PATH", str(tmp_path / "anchor"))
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://db/estuary")
    monkeypatch.delenv("PAYLOAD_KEYS", raising=False)
    with pytest.raises(RuntimeError, match="PAYLOAD_KEYS must be set in production"):
        config.ProductionConfig.init()


# --- the codec ---------------------------------------------------------------------------


async def test_round_trip_hides_value_and_encoding_and_names_the_key():
    codec = EncryptionCodec(parse_keys(K1))
    original = plain(Note("ada@example.com", "call back after 5"))
    [sealed] = await codec.encode([original])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert b"ada@example.com" not in sealed.data and b"json/plain" not in sealed.data
    [opened] = await codec.decode([sealed])
    assert opened == original


async def test_rotation_reads_old_keys_and_writes_with_the_current_one():
    old = EncryptionCodec(parse_keys(K1))
    [written_before] = await old.encode([plain("before rotation")])
    rotated = EncryptionCodec(parse_keys(f"{K1},{K2}", "k2"))
    [written_after] = await rotated.encode([plain("after rotation")])
    assert written_after.metadata[KEY_ID_METADATA] == b"k2"
    decoded = await rotated.decode([written_before, written_after])
    assert [json.loads(p.data) for p in decoded] == ["before rotation", "after rotation"]
    # Once k1 is dropped, what it wrote can no longer be read, and the error says which key.
    with pytest.raises(PayloadDecryptionError, match="key id 'k1', which is not in PAYLOAD_KEYS"):
        await EncryptionCodec(parse_keys(K2)).decode([written_before])


async def test_tampered_ciphertext_is_refused():
    codec = EncryptionCodec(parse_keys(K1))
    [sealed] = await codec.encode([plain({"amount_cents": 100})])
    flipped = bytearray(sealed.data)
    flipped[-1] ^= 1
    tampered = Payload(metadata=dict(sealed.metadata), data=bytes(flipped))
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([tampered])


async def test_relabelled_key_id_is_refused():
    # The key id is authenticated too: a payload cannot be made to claim another key.
    k1 = parse_keys(K1)
    same_key_other_id = f"k9:{K1.split(':', 1)[1]}"
    codec = EncryptionCodec(parse_keys(f"{K1},{same_key_other_id}", "k1"))
    [sealed] = await codec.encode([plain("x")])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID_METADATA: b"k9"}, data=sealed.data)
    assert k1.current == "k1"
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([relabelled])


async def test_unencrypted_payloads_pass_through_decode():
    codec = EncryptionCodec(parse_keys(K1))
    old = plain({"practitioner_id": 7})
    assert await codec.decode([old]) == [old]


async def test_data_converter_encrypts_failure_messages_and_restores_them():
    converter = data_converter({"PAYLOAD_KEYS": K1})
    failure = Failure()
    await converter.encode_failure(ApplicationError("ada@example.com may not approve"), failure)
    assert failure.message == ENCODED_FAILURE_MESSAGE
    assert b"ada@example.com" not in failure.SerializeToString()
    back = await converter.decode_failure(Failure.FromString(failure.SerializeToString()))
    assert back.message == "ada@example.com may not approve"
    assert data_converter({"PAYLOAD_KEYS": ""}) is DataConverter.default


async def test_raw_history_events_are_decoded_in_place_for_display():
    converter = data_converter({"PAYLOAD_KEYS": K1})
    [encrypted] = await converter.encode([Note("ada@example.com", "hello")])
    failure = Failure()
    await converter.encode_failure(ApplicationError("refused for ada@example.com"), failure)
    started = HistoryEvent(event_id=1, event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    started.workflow_execution_started_event_attributes.input.payloads.append(encrypted)
    started.workflow_execution_started_event_attributes.memo.fields["reason"].CopyFrom(encrypted)
    failed = HistoryEvent(event_id=2, event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)
    failed.activity_task_failed_event_attributes.failure.cause.CopyFrom(failure)
    await decode_in_place([started, failed], converter.payload_codec)
    attrs = started.workflow_execution_started_event_attributes
    assert json.loads(attrs.input.payloads[0].data)["practitioner_email"] == "ada@example.com"
    assert json.loads(attrs.memo.fields["reason"].data)["text"] == "hello"
    cause = failed.activity_task_failed_event_attributes.failure.cause
    assert cause.message == "refused for ada@example.com"


async def test_pending_activities_last_failure_is_decoded_for_display():
    # The run page lists pending activities with their last failure, read raw from describe.
    from temporalio.api.workflow.v1 import PendingActivityInfo

    converter = data_converter({"PAYLOAD_KEYS": K1})
    pending = PendingActivityInfo(activity_id="1")
    await converter.encode_failure(
        ApplicationError("provider refused ada@example.com"), pending.last_failure
    )
    [details] = await converter.encode(["retrying for ada@example.com"])
    pending.heartbeat_details.payloads.append(details)
    assert pending.last_failure.message == ENCODED_FAILURE_MESSAGE
    await decode_in_place([pending], converter.payload_codec)
    assert pending.last_failure.message == "provider refused ada@example.com"
    assert json.loads(pending.heartbeat_details.payloads[0].data) == "retrying for ada@example.com"


# --- the codec endpoint ------------------------------------------------------------------


@pytest.fixture
def keyed_app(app):
    app.config["PAYLOAD_KEYS"] = K1
    app.config["TEMPORAL_UI_URL"] = f"{UI_ORIGIN}/"
    return app


def _body(*payloads: Payload) -> dict:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


def test_endpoint_encodes_and_decodes_for_signed_in_staff(keyed_app):
    viewer = login(keyed_app, "viewer")
    original = plain({"email": "ada@example.com"})
    headers = {"Origin": UI_ORIGIN, "X-Namespace": "default"}
    encoded = viewer.post("/codec/encode", json=_body(original), headers=headers)
    assert encoded.status_code == 200
    assert encoded.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert encoded.headers["Access-Control-Allow-Credentials"] == "true"
    sealed = encoded.get_json()["payloads"][0]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == ENCODING
    decoded = viewer.post("/codec/decode", json={"payloads": [sealed]}, headers=headers)
    assert decoded.status_code == 200
    [back] = decoded.get_json()["payloads"]
    assert json.loads(base64.b64decode(back["data"])) == {"email": "ada@example.com"}
    # Unencrypted payloads (old histories) come back as they are.
    passthrough = viewer.post("/codec/decode", json=_body(original), headers=headers)
    assert passthrough.get_json() == _body(original)


def test_endpoint_refuses_anyone_not_signed_in(keyed_app):
    codec = EncryptionCodec(parse_keys(K1))
    sealed = codec.encrypt(plain("secret note"))
    response = keyed_app.test_client().post(
        "/codec/decode", json=_body(sealed), headers={"Origin": UI_ORIGIN}
    )
    assert response.status_code == 401
    assert "sign in" in response.get_json()["error"]
    assert "secret note" not in response.get_data(as_text=True)
    # The Web UI can read why (CORS headers on the refusal too).
    assert response.headers["Access-Control-Allow-Origin"] == UI_ORIGIN


def test_endpoint_refuses_other_origins_and_answers_preflight_for_the_web_ui(keyed_app):
    viewer = login(keyed_app, "viewer")
    codec = EncryptionCodec(parse_keys(K1))
    sealed = codec.encrypt(plain("secret note"))
    evil = viewer.post(
        "/codec/decode", json=_body(sealed), headers={"Origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    assert "Access-Control-Allow-Origin" not in evil.headers
    assert "secret note" not in evil.get_data(as_text=True)
    preflight = viewer.options(
        "/codec/decode",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert "X-Namespace" in preflight.headers["Access-Control-Allow-Headers"]
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    refused_preflight = viewer.options("/codec/decode", headers={"Origin": "https://evil.example"})
    assert refused_preflight.status_code == 403


@pytest.mark.parametrize(
    ("kwargs", "status", "says"),
    [
        ({"data": "payloads", "content_type": "text/plain"}, 415, "application/json"),
        ({"json": {"payload": []}}, 400, '{"payloads": [...]}'),
        ({"json": {"payloads": [{"metadata": "encoding"}]}}, 400, "not valid"),
        ({"json": {"payloads": []}, "headers": {"X-Namespace": "other"}}, 400, "namespace"),
    ],
)
def test_endpoint_bad_requests_say_what_is_wrong(keyed_app, kwargs, status, says):
    viewer = login(keyed_app, "viewer")
    response = viewer.post("/codec/decode", **kwargs)
    assert response.status_code == status
    assert says in response.get_json()["error"]


def test_endpoint_refuses_tampered_payloads_naming_which(keyed_app):
    viewer = login(keyed_app, "viewer")
    codec = EncryptionCodec(parse_keys(K1))
    good = codec.encrypt(plain("a"))
    bad = codec.encrypt(plain("b"))
    bad = Payload(metadata=dict(bad.metadata), data=bytes(bad.data)[:-1] + b"\x00")
    response = viewer.post("/codec/decode", json=_body(good, bad))
    assert response.status_code == 422
    assert response.get_json()["error"].startswith("payload 1: ")
