"""`/codec/encode` and `/codec/decode`: the Temporal Web UI's remote codec protocol.

The Web UI shows payloads as they are stored, which is encrypted (workers/temporal/
codec.py). Pointed at this endpoint it sends them here and shows what comes back, so
signed-in staff read decoded values while anyone else who reaches the Web UI sees
ciphertext.

Protocol: POST a `Payloads` message as protobuf JSON (`{"payloads": [{"metadata": {...},
"data": "..."}]}`), get the same shape back; `X-Namespace` names the namespace.

Auth: the console's own session cookie. The Web UI sends it when its codec setting
"Include cross-origin credentials" is on and the UI and the console are the same site
(same host or parent domain; the cookie is SameSite=Lax). Without a signed-in staff
session the answer is 401. CORS allows exactly one origin (CODEC_CORS_ORIGIN, default the
origin of TEMPORAL_UI_URL) with credentials; a request from any other origin is refused
before anything is decoded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, request
from flask_login import current_user

from dashboard.extensions import csrf
from dashboard.permissions import can
from temporal_gateway.codec import (
    PayloadDecryptionError,
    PayloadsJSONError,
    convert_payloads_json,
)

bp = Blueprint("codec", __name__, url_prefix="/codec")
# No state changes here, the body must be JSON (which a cross-site form cannot send
# without a CORS preflight) and only the configured origin may read answers.
csrf.exempt(bp)

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_PAYLOADS = 1000
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"


def allowed_origin() -> str:
    """The one origin allowed to call the codec across origins (scheme://host[:port])."""
    configured = str(current_app.config.get("CODEC_CORS_ORIGIN") or "").strip().rstrip("/")
    if configured:
        return configured
    parts = urlsplit(str(current_app.config.get("TEMPORAL_UI_URL", "")))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _own_origin() -> str:
    return request.host_url.rstrip("/")


def _with_cors(response: Response) -> Response:
    origin = request.headers.get("Origin")
    if origin and origin == allowed_origin():
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers.add("Vary", "Origin")
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return _with_cors(response)


def _refused_origin() -> Response | None:
    origin = request.headers.get("Origin")
    if origin and origin not in (allowed_origin(), _own_origin()):
        return _error(
            403,
            f"origin {origin} may not use this codec; only {allowed_origin() or 'none'} "
            "(set CODEC_CORS_ORIGIN or TEMPORAL_UI_URL)",
        )
    return None


def _preflight() -> Response:
    refused = _refused_origin()
    if refused is not None:
        return refused
    response = _with_cors(Response(status=204))
    response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def _read_payloads() -> dict | Response:
    namespace = request.headers.get("X-Namespace")
    ours = current_app.config.get("TEMPORAL_NAMESPACE", "default")
    if namespace and namespace != ours:
        return _error(400, f"this codec serves namespace {ours!r}, not {namespace!r}")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
    if not request.is_json:
        return _error(415, "send the payloads as application/json")
    body: Any = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("payloads"), list):
        return _error(400, 'body must be a JSON object {"payloads": [...]}')
    if len(body["payloads"]) > MAX_PAYLOADS:
        return _error(413, f"at most {MAX_PAYLOADS} payloads per request")
    return body


def _convert(direction: str) -> Response:
    refused = _refused_origin()
    if refused is not None:
        return refused
    if not current_user.is_authenticated or not can(current_user, "view"):
        return _error(401, "sign in to the Estuary console to see decoded payloads")
    parsed = _read_payloads()
    if isinstance(parsed, Response):
        return parsed
    try:
        answer = convert_payloads_json(current_app.config, parsed, direction)
    except PayloadsJSONError as exc:
        return _error(400, str(exc))
    except PayloadDecryptionError as exc:
        return _error(422, str(exc))
    return _with_cors(jsonify(answer))


@bp.route("/encode", methods=["POST", "OPTIONS"])
def encode() -> Response:
    return _preflight() if request.method == "OPTIONS" else _convert("encode")


@bp.route("/decode", methods=["POST", "OPTIONS"])
def decode() -> Response:
    return _preflight() if request.method == "OPTIONS" else _convert("decode")
