"""Development PIN key and signed PIN bundle, so ``make run`` can walk swipe -> PIN -> sale.

A real station gets its PIN pepper and head office's bundle key at installation; a developer's
``make run`` has neither, so no PIN could ever be accepted. In simulated mode only
(``devices.simulated = true``), and only while the station has no real pepper and no head
office key configured, the agent uses the fixed development pepper below and installs a
bundle signed with the fixed development key, holding the demo attendants.

Both are public (they are in this file): real mode never accepts either. ``CardStation``
refuses the development pepper and the development public key when not simulated.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.cards.pin_bundle import build_bundle

# Documented in docs/api.md ("Try it with make run"): attendant id -> PIN.
DEMO_ATTENDANTS: dict[str, str] = {"DEMO-1": "1234", "DEMO-2": "5678"}
DEMO_BUNDLE_VERSION = 1
DEMO_BUNDLE_DAYS = 3650

DEV_PEPPER: bytes = hashlib.sha256(b"loyalty-agent development PIN pepper: never on a real station").digest()
_DEV_KEY_SEED = hashlib.sha256(b"loyalty-agent development PIN bundle key: never on a real station").digest()


def dev_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_DEV_KEY_SEED)


def dev_public_key() -> Ed25519PublicKey:
    return dev_signing_key().public_key()


def is_dev_public_key(key: Ed25519PublicKey) -> bool:
    raw = serialization.PublicFormat.Raw
    return key.public_bytes(serialization.Encoding.Raw, raw) == dev_public_key().public_bytes(
        serialization.Encoding.Raw, raw)


def demo_bundle(station_id: str, now: datetime) -> bytes:
    """The demo attendants' bundle for this station, signed with the development key."""
    return build_bundle(dev_signing_key(), version=DEMO_BUNDLE_VERSION, stations=[station_id],
                        issued_at=now - timedelta(minutes=5), expires_at=now + timedelta(days=DEMO_BUNDLE_DAYS),
                        pins=DEMO_ATTENDANTS, pepper=DEV_PEPPER)
