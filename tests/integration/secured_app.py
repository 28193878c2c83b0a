"""Apps with the security layer (api/security.py) and chosen security settings, for tests.

Works before and after create_app() installs the layer itself: the security settings are
added to the Settings (as extra dataclass fields while Settings does not declare them yet),
and install_security() is called only when create_app() has not done it.
"""
from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import select

from openalgo_gtt.api.security import install_security
from openalgo_gtt.app import create_app
from openalgo_gtt.config import Settings
from openalgo_gtt.gateway import Gateway
from openalgo_gtt.store.models import AuditRecord


def security_settings(settings: Settings, **values) -> Settings:
    """`settings` with the given security settings, whether or not Settings declares them."""
    names = {f.name for f in dataclasses.fields(settings)}
    missing = {name: value for name, value in values.items() if name not in names}
    if missing:
        extended = dataclasses.make_dataclass(
            "SecuredSettings",
            [(name, object, dataclasses.field(default=value)) for name, value in missing.items()],
            bases=(type(settings),),
            frozen=True,
        )
        settings = extended(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.init})
    present = {name: value for name, value in values.items() if name in names}
    return dataclasses.replace(settings, **present) if present else settings


@contextmanager
def secured_app(settings: Settings, **security) -> Iterator[Flask]:
    """An app on `settings`' database with the security layer and `security` settings
    (rate_limit, rate_limit_enabled, rate_limit_storage_uri, failed_key_limit,
    trusted_proxies, allowed_ips, rate_limit_key_prefix)."""
    security.setdefault("rate_limit_key_prefix", f"test-{uuid.uuid4().hex[:12]}")
    gateway = Gateway.build(security_settings(settings, **security))
    try:
        app = create_app(gateway=gateway)
        app.config["TESTING"] = True
        if "openalgo_gtt_security" not in app.extensions:  # until create_app() installs it
            install_security(app, gateway.settings)
        yield app
    finally:
        gateway.close()


def ping(client, key, **kwargs):
    return client.post("/api/v1/ping", data=json.dumps({"apikey": key}), content_type="application/json", **kwargs)


def audit_rows(gateway_or_app):
    gateway = getattr(gateway_or_app, "extensions", {}).get("openalgo_gtt", gateway_or_app)
    with gateway.sessions() as session:
        return session.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()
