"""Signed configuration documents from head office (earning rules, directory deltas).

The broker ACL alone is not enough: anyone who can publish on a station's ``config/{kind}``
topic (a leaked head-office credential, a misconfigured bridge) could send a program where a
40 L sale earns 40,000 points. So every configuration kind is signed with head office's Ed25519
key, and the station verifies the signature before it reads anything else::

    {"format": "signed-config/1", "kind": "earning_rules", "payload": {...the document...},
     "signature": "<base64 Ed25519 over canonical({format, kind, payload})>"}

``canonical`` is the PIN bundle's canonical JSON (sorted keys, no spaces, UTF-8), so whitespace
and key order do not matter. ``kind`` is inside the signed bytes: a signed directory delta cannot
be replayed as earning rules. PIN bundles keep their own signed format (``agent.cards.pin_bundle``).

Transition (stations whose head office still sends the old unsigned documents): with
``sync.require_signed_config = false`` an unsigned document is still applied (with a warning);
a signed one is always verified. The default is ``true``.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.errors import AgentError

if TYPE_CHECKING:
    from agent.queue.config import SyncSettings

log = logging.getLogger(__name__)
FORMAT = "signed-config/1"


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_config(private_key: Ed25519PrivateKey, kind: str, payload: dict[str, Any]) -> bytes:
    """Head office side (and tests): wrap and sign one configuration document."""
    signed = {"format": FORMAT, "kind": kind, "payload": payload}
    signature = base64.b64encode(private_key.sign(canonical(signed))).decode()
    return json.dumps({**signed, "signature": signature}, ensure_ascii=False, separators=(",", ":")).encode()


def load_public_key(text: str) -> Ed25519PublicKey:
    """A base64 raw 32-byte Ed25519 public key (the format of ``cards.pins.bundle_public_key``)."""
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error):
        raise ValueError("must be a base64 Ed25519 public key (32 bytes)") from None


def _refuse(code: str, es: str, en: str) -> AgentError:
    return AgentError(code, es, en, status=422)


class ConfigVerifier:
    def __init__(self, public_key: Ed25519PublicKey | None, *, required: bool = True) -> None:
        self._public_key = public_key
        self._required = required

    def unwrap(self, kind: str, raw: bytes) -> bytes:
        """The verified inner document as JSON bytes; raise ``AgentError`` if it must be refused."""
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not (isinstance(document, dict) and "signature" in document):
            if self._required:
                raise _refuse("config_unsigned",
                              "Configuración sin firma de la oficina central: rechazada.",
                              "Configuration without a head office signature: refused.")
            log.warning("configuración %s: documento sin firma aceptado (sync.require_signed_config = false) "
                        "[config_unsigned_accepted]", kind)
            return raw
        if self._public_key is None:
            raise _refuse("config_no_key",
                          "No hay clave pública de la oficina central configurada (sync.config_public_key).",
                          "No head office public key configured (sync.config_public_key).")
        signed = {k: document.get(k) for k in ("format", "kind", "payload")}
        try:
            signature = base64.b64decode(document["signature"], validate=True)
            self._public_key.verify(signature, canonical(signed))
        except (InvalidSignature, TypeError, ValueError, binascii.Error):
            raise _refuse("config_bad_signature",
                          "La firma de la configuración no es válida: fue alterada o no viene de la oficina central.",
                          "The configuration signature is invalid: altered or not from head office.") from None
        if set(document) != {"format", "kind", "payload", "signature"} or signed["format"] != FORMAT:
            raise _refuse("config_malformed", "Formato de configuración firmada no soportado.",
                          "Unsupported signed configuration format.")
        if signed["kind"] != kind:
            raise _refuse("config_wrong_kind",
                          f"Configuración firmada para «{signed['kind']}» recibida como «{kind}».",
                          f"Signed configuration for {signed['kind']!r} received as {kind!r}.")
        return json.dumps(signed["payload"], ensure_ascii=False).encode()


def config_verifier(settings: "SyncSettings") -> ConfigVerifier:
    """The station's verifier from its ``[sync]`` settings."""
    key = settings.config_public_key
    return ConfigVerifier(load_public_key(key) if key else None, required=settings.require_signed_config)
