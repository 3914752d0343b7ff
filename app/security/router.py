"""The instance's public signing key, for checking what the registry signed (audit packs) out of band."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from app.identity.dependencies import CurrentPrincipal
from app.security import signing

router = APIRouter(prefix="/api/v1", tags=["instance"])


class PublicKeyRead(BaseModel):
    """The Ed25519 public key: ``public_key`` is base64 of its 32 raw bytes, ``key_id`` the first 16 hex
    digits of their SHA-256, ``pem`` the same key as a PEM ``PUBLIC KEY`` block."""

    algorithm: str
    public_key: str
    key_id: str
    pem: str


@router.get("/instance/public-key", response_model=PublicKeyRead)
def public_key(principal: CurrentPrincipal) -> PublicKeyRead:
    """The public half of the instance signing key; pin it with an audit pack's ``verify.py --public-key``."""
    return PublicKeyRead.model_validate(signing.public_key_info())
