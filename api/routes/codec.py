"""The codec server: the Temporal UI sends encrypted payloads here and shows what comes back.

Temporal's codec-server protocol: `POST {endpoint}/decode` and `{endpoint}/encode` with
`{"payloads": [{"metadata": {name: base64}, "data": base64}]}`, the namespace in `X-Namespace`.
Two ways in:

- `/codec/decode`, `/codec/encode` with an agent's (or admin's) API key, for tools and for a UI
  behind a proxy that adds the key;
- `/codec/{token}/decode`, `/codec/{token}/encode` with the secret `DUNWELL_CODEC_TOKEN` in the
  path, for a Temporal UI that cannot add our key (the dev server's UI sends no credentials).
  Whoever has the URL reads decrypted payloads: keep it like a password, serve it only over
  HTTPS beyond localhost. `dunwell dev` makes the token and gives it to its UI.

Browsers may call either only from the UI's origin (CORS: DUNWELL_CODEC_UI_ORIGINS).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from google.protobuf.message import DecodeError
from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payload

from api.deps import Agent, SettingsDep
from api.problems import COMMON_PROBLEMS, Problem, problem_responses
from encryption import EncryptionCodec, KeyProblem

router = APIRouter(prefix="/codec", tags=["codec"], responses=COMMON_PROBLEMS)

_PROBLEMS = problem_responses(
    {
        404: "Unknown codec token, or no codec token configured",
        400: "A malformed payload (not base64, truncated, altered) or one needing a key we lack",
        503: "This API has no encryption codec",
    }
)


class PayloadJSON(BaseModel):
    """One payload, as the Temporal UI and CLI send it: every byte string in base64."""

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class Payloads(BaseModel):
    payloads: list[PayloadJSON] = Field(max_length=1000)


def _codec(request: Request) -> EncryptionCodec:
    codec: EncryptionCodec | None = request.app.state.codec
    if codec is None:
        raise Problem(503, "This API's Temporal client has no encryption codec configured.")
    return codec


Codec = Annotated[EncryptionCodec, Depends(_codec)]


def _token(token: str, settings: SettingsDep) -> None:
    expected = settings.codec_token.get_secret_value() if settings.codec_token else ""
    if not expected or not secrets.compare_digest(token.encode(), expected.encode()):
        raise Problem(404, "Unknown codec endpoint: check the URL the Temporal UI was given.")


TokenOK = Depends(_token)


def _from_json(body: Payloads) -> list[Payload]:
    try:
        return [
            Payload(
                metadata={k: base64.b64decode(v, validate=True) for k, v in p.metadata.items()},
                data=base64.b64decode(p.data, validate=True),
            )
            for p in body.payloads
        ]
    except (binascii.Error, ValueError):
        raise Problem(400, "Every payload's metadata values and data must be base64.") from None


def _to_json(payloads: list[Payload]) -> Payloads:
    return Payloads(
        payloads=[
            PayloadJSON(
                metadata={k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                data=base64.b64encode(p.data).decode(),
            )
            for p in payloads
        ]
    )


async def _decode(codec: EncryptionCodec, body: Payloads) -> Payloads:
    try:
        return _to_json(await codec.decode(_from_json(body)))
    except KeyProblem as exc:
        raise Problem(400, str(exc)) from None
    except (ValueError, DecodeError):
        # Truncated ciphertext, a bad nonce, a plaintext that is no payload: the request's fault.
        raise Problem(
            400, "A payload is marked encrypted but is malformed: send it as Temporal wrote it."
        ) from None


async def _encode(codec: EncryptionCodec, body: Payloads) -> Payloads:
    return _to_json(await codec.encode(_from_json(body)))


@router.post("/decode", response_model=Payloads, responses=_PROBLEMS)
async def decode(body: Payloads, actor: Agent, codec: Codec) -> Payloads:
    """Decrypt payloads (the Temporal UI's codec-server protocol)."""
    return await _decode(codec, body)


@router.post("/encode", response_model=Payloads, responses=_PROBLEMS)
async def encode(body: Payloads, actor: Agent, codec: Codec) -> Payloads:
    """Encrypt payloads (the Temporal UI's codec-server protocol)."""
    return await _encode(codec, body)


@router.post(
    "/{token}/decode", response_model=Payloads, responses=_PROBLEMS, dependencies=[TokenOK]
)
async def decode_for_ui(body: Payloads, codec: Codec) -> Payloads:
    """Decrypt payloads for a Temporal UI given the secret codec URL."""
    return await _decode(codec, body)


@router.post(
    "/{token}/encode", response_model=Payloads, responses=_PROBLEMS, dependencies=[TokenOK]
)
async def encode_for_ui(body: Payloads, codec: Codec) -> Payloads:
    """Encrypt payloads for a Temporal UI given the secret codec URL."""
    return await _encode(codec, body)
