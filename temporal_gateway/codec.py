"""Payload encryption: the AES-GCM codec, its key ring, and the one data converter.

Temporal stores every workflow input, result, signal, update, memo and failure message in
its history, and its Web UI and history downloads show them to anyone who can reach them.
They carry practitioners' names and emails, staff emails and free-text notes, so every
payload leaves our processes encrypted:

- keys come from the environment: `PAYLOAD_KEYS="id1:base64key,id2:base64key"` and
  `PAYLOAD_KEY_ID` (the key new payloads are encrypted with);
- each encrypted payload names its key in the metadata (`encryption-key-id`), so a key can
  be rotated: add the new key, make it current, keep the old one while histories written
  with it are still read;
- a payload that is not encrypted (a history written before encryption was turned on, or
  a search attribute) passes through decode unchanged.

`data_converter(config)` is the only place that builds the converter: the workers, the
console's gateway and the `flask` commands all connect through `temporal_gateway.client`,
which uses it. Nothing here imports Flask, the database or a Temporal client.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# What DefaultFailureConverterWithEncodedAttributes leaves in clear in place of a message.
ENCODED_FAILURE_MESSAGE = "Encoded failure"


class PayloadKeyError(ValueError):
    """The key settings are malformed; the message names the setting and the problem."""


class PayloadDecryptionError(ValueError):
    """An encrypted payload could not be decrypted (unknown key id, or altered data)."""


@dataclasses.dataclass(frozen=True)
class KeyRing:
    """Known keys by id and the id new payloads are encrypted with."""

    keys: Mapping[str, bytes] = dataclasses.field(repr=False)  # never in logs or tracebacks
    current: str = ""

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            known = ", ".join(sorted(self.keys)) or "none"
            raise PayloadKeyError(
                f"PAYLOAD_KEY_ID {self.current!r} is not one of the ids in PAYLOAD_KEYS "
                f"(known: {known})"
            )


def parse_keys(raw: str, current: str | None = None) -> KeyRing:
    """`id1:base64key,id2:base64key` (+ the current id) as a KeyRing.

    Keys are 16, 24 or 32 random bytes, base64 (standard or URL-safe). With one key the
    current id may be left out; with several it must be named, so a deploy never picks
    one by accident.
    """
    keys: dict[str, bytes] = {}
    for number, part in enumerate(filter(None, (p.strip() for p in raw.split(","))), 1):
        key_id, sep, encoded = part.partition(":")
        key_id = key_id.strip()
        if not sep or not encoded.strip():
            raise PayloadKeyError(f"PAYLOAD_KEYS entry {number} must look like id:base64key")
        if not _KEY_ID.match(key_id):
            raise PayloadKeyError(
                f"PAYLOAD_KEYS entry {number}: key id {key_id!r} must be 1-64 letters, "
                "digits, '.', '_' or '-'"
            )
        if key_id in keys:
            raise PayloadKeyError(f"PAYLOAD_KEYS names key id {key_id!r} twice")
        try:
            padded = encoded.strip() + "=" * (-len(encoded.strip()) % 4)
            key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise PayloadKeyError(f"PAYLOAD_KEYS key {key_id!r} is not valid base64") from None
        if len(key) not in (16, 24, 32):
            raise PayloadKeyError(
                f"PAYLOAD_KEYS key {key_id!r} is {len(key)} bytes; AES-GCM needs 16, 24 or 32"
            )
        keys[key_id] = key
    if not keys:
        raise PayloadKeyError("PAYLOAD_KEYS is empty")
    if not current:
        if len(keys) > 1:
            raise PayloadKeyError("PAYLOAD_KEY_ID must name the current key when there are several")
        current = next(iter(keys))
    return KeyRing(keys, current.strip())


def new_key_entry(key_id: str) -> str:
    """A fresh `id:base64key` entry (32 random bytes), e.g. for the dev key file."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode('ascii')}"


class EncryptionCodec(PayloadCodec):
    """AES-GCM over the whole serialised payload (its metadata included), key id as AAD."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.ring.current
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(
            nonce, payload.SerializeToString(), key_id.encode("ascii")
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode("ascii")},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption, or never encrypted (search attributes)
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode("ascii", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            known = ", ".join(sorted(self._ciphers))
            raise PayloadDecryptionError(
                f"payload was encrypted with key id {key_id!r}, which is not in "
                f"PAYLOAD_KEYS (known: {known})"
            )
        data = bytes(payload.data)
        try:
            plain = cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], key_id.encode("ascii"))
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload encrypted with key id {key_id!r} failed authentication: "
                "it was altered, or the key with that id is not the one it was written with"
            ) from None
        out = Payload()
        out.ParseFromString(plain)
        return out


def key_ring(config: Mapping[str, Any]) -> KeyRing | None:
    """The configured key ring, or None when encryption is off (tests without keys)."""
    raw = config.get("PAYLOAD_KEYS") or ""
    if not raw.strip():
        return None
    return parse_keys(raw, config.get("PAYLOAD_KEY_ID") or None)


def codec_for(config: Mapping[str, Any]) -> EncryptionCodec | None:
    ring = key_ring(config)
    return EncryptionCodec(ring) if ring else None


def data_converter(config: Mapping[str, Any]) -> DataConverter:
    """The data converter every client of ours uses (workers, console, commands).

    With keys configured, payloads are encrypted and failure messages and stack traces
    move into an encoded (so encrypted) attribute: refusal messages can name people.
    """
    codec = codec_for(config)
    if codec is None:
        return DataConverter.default
    return dataclasses.replace(
        DataConverter.default,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


# --- decoding raw history for display -----------------------------------------------------
#
# The console reads raw history events (protobuf) to draw its timeline and show the JSON.
# The SDK decodes payloads only for values it converts itself, so raw events are decoded
# here: find every Payload inside a message, decrypt, and put failure messages back.

_fields_cache: dict[str, tuple[FieldDescriptor, ...]] = {}
_holds_cache: dict[str, bool] = {}


def _value_type(f: FieldDescriptor) -> Descriptor | None:
    """The message type a field holds (a map's value type for map fields)."""
    target = f.message_type
    if target is not None and target.GetOptions().map_entry:
        return target.fields_by_name["value"].message_type
    return target


def _holds_payload(desc: Descriptor) -> bool:
    name = desc.full_name
    if name == Payload.DESCRIPTOR.full_name:
        return True
    if name not in _holds_cache:
        # Assumed while being worked out, so recursive types (Failure.cause) are walked.
        _holds_cache[name] = True
        _holds_cache[name] = bool(_fields_with_payloads(desc))
    return _holds_cache[name]


def _fields_with_payloads(desc: Descriptor) -> tuple[FieldDescriptor, ...]:
    """Message-typed fields of `desc` whose type can contain a Payload (cached per type)."""
    cached = _fields_cache.get(desc.full_name)
    if cached is None:
        cached = tuple(
            f
            for f in desc.fields
            if f.type == FieldDescriptor.TYPE_MESSAGE
            and (target := _value_type(f)) is not None
            and _holds_payload(target)
        )
        _fields_cache[desc.full_name] = cached
    return cached


def _walk(message: Message) -> Iterator[Message]:
    """`message` and every message below it that can hold a payload, parents first."""
    yield message
    if isinstance(message, Payload):
        return
    for f in _fields_with_payloads(message.DESCRIPTOR):
        value = getattr(message, f.name)
        if f.message_type.GetOptions().map_entry:
            for item in value.values():
                if isinstance(item, Message):
                    yield from _walk(item)
        elif f.is_repeated:
            for item in value:
                yield from _walk(item)
        elif message.HasField(f.name):
            yield from _walk(value)


async def decode_in_place(messages: Sequence[Message], codec: PayloadCodec | None) -> None:
    """Decrypt every payload inside `messages` (history events) in one codec call, and
    restore failure messages that were moved into encoded attributes."""
    if codec is None:
        return
    payloads: list[Payload] = []
    failures: list[Failure] = []
    for message in messages:
        for node in _walk(message):
            if isinstance(node, Payload):
                if node.metadata.get("encoding") == ENCODING:
                    payloads.append(node)
            elif isinstance(node, Failure) and node.HasField("encoded_attributes"):
                failures.append(node)
    if payloads:
        for original, decoded in zip(payloads, await codec.decode(payloads), strict=True):
            original.CopyFrom(decoded)
    for failure in failures:
        _restore_failure_text(failure)


def _restore_failure_text(failure: Failure) -> None:
    try:
        attrs = json.loads(bytes(failure.encoded_attributes.data))
    except ValueError:
        return  # not the SDK's {"message", "stack_trace"} document: leave it as it is
    if not isinstance(attrs, dict):
        return
    if failure.message in ("", ENCODED_FAILURE_MESSAGE) and isinstance(attrs.get("message"), str):
        failure.message = attrs["message"]
    if not failure.stack_trace and isinstance(attrs.get("stack_trace"), str):
        failure.stack_trace = attrs["stack_trace"]


class PayloadsJSONError(ValueError):
    """A body that is not a Temporal `Payloads` message in protobuf JSON."""


def convert_payloads_json(config: Mapping[str, Any], body: dict, direction: str) -> dict:
    """The codec server's work: `body` is a `Payloads` message as protobuf JSON; each
    payload is encrypted (`direction` "encode") or decrypted ("decode") with this
    deployment's codec (passed through when encryption is off); the answer is JSON too.

    Raises PayloadsJSONError for a body that does not parse, and PayloadDecryptionError
    naming the payload's number for one that does not decrypt.
    """
    try:
        parsed = json_format.ParseDict(body, Payloads())
    except json_format.ParseError as exc:
        raise PayloadsJSONError(f"payloads are not valid Temporal Payloads JSON: {exc}") from exc
    codec = codec_for(config)
    out = Payloads()
    for number, payload in enumerate(parsed.payloads):
        if codec is None:  # encryption off: nothing is encrypted, nothing to encrypt
            out.payloads.append(payload)
            continue
        try:
            converted = codec.encrypt(payload) if direction == "encode" else codec.decrypt(payload)
        except PayloadDecryptionError as exc:
            raise PayloadDecryptionError(f"payload {number}: {exc}") from exc
        out.payloads.append(converted)
    return json_format.MessageToDict(out)
