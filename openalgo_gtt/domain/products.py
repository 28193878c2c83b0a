"""Products: OpenAlgo's labels (CNC, NRML, MIS, MTF) and the brokers' codes for them.

Upstox has three codes (D for delivery and carry-forward, I for intraday, MTF), so CNC and NRML
are one code there; the label the caller sent is recorded and shown back (see the order book).
"""
from __future__ import annotations

from typing import Any

from openalgo_gtt.domain.errors import DomainError
from openalgo_gtt.domain.model import (
    PRODUCT_DELIVERY, PRODUCT_INTRADAY, PRODUCT_MTF, UPSTOX_FEATURES, BrokerFeatures,
)

_TO_UPSTOX_PRODUCT = {"CNC": PRODUCT_DELIVERY, "NRML": PRODUCT_DELIVERY, "MIS": PRODUCT_INTRADAY, "MTF": PRODUCT_MTF}


def upstox_product(openalgo_product: str) -> str:
    """CNC and NRML -> D (delivery / carry-forward), MIS -> I, MTF -> MTF."""
    label = str(openalgo_product or "").strip().upper()
    try:
        return _TO_UPSTOX_PRODUCT[label]
    except KeyError:
        raise DomainError(f"product must be one of CNC, NRML, MIS, MTF (got {openalgo_product!r})") from None


def broker_product(openalgo_product: str, features: BrokerFeatures) -> str:
    """The broker's product code for an OpenAlgo label, or a refusal naming what it takes."""
    label = str(openalgo_product or "").strip().upper()
    code = features.product(label)
    if code is None:
        if features is UPSTOX_FEATURES:
            return upstox_product(label)  # its own message
        allowed = ", ".join(name for name, _ in features.products)
        raise DomainError(f"product {label or openalgo_product!r} is not available for GTTs on {features.name} "
                          f"(use {allowed})", details={"product": openalgo_product})
    return code


def caller_product(upstox_product: str, is_derivative: bool) -> str:
    """The OpenAlgo label for a GTT placed elsewhere: D -> CNC (equity) / NRML (derivative),
    I -> MIS, MTF -> MTF. An unknown code passes through unchanged: the order book shows what the
    broker said rather than failing on one odd entry."""
    code = str(upstox_product or "").strip().upper()
    if code == PRODUCT_DELIVERY:
        return "NRML" if is_derivative else "CNC"
    if code == PRODUCT_INTRADAY:
        return "MIS"
    if code == PRODUCT_MTF:
        return "MTF"
    return str(upstox_product)


def product_code(label: Any) -> str:
    """An Upstox product code from an OpenAlgo label, or from a code already."""
    value = str(label or "").strip().upper()
    return _TO_UPSTOX_PRODUCT.get(value, value)
