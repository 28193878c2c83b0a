"""Issue 25, item 9: Kite's messages point to Kite's login, never to /upstox/login."""
from __future__ import annotations

from datetime import timedelta

import pytest

from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.login import StateUse
from openalgo_gtt.services.kite_login import START_AGAIN as KITE_START_AGAIN
from openalgo_gtt.services.token_alerts import TokenAlerts
from openalgo_gtt.services.tokens import KITE, UPSTOX
from openalgo_gtt.services.upstox_login import LoginError, consume_login_state


class States:
    def __init__(self, use):
        self.use = use

    def consume(self, _hash, _now):
        return self.use


@pytest.mark.parametrize("use", [StateUse.UNKNOWN, StateUse.ALREADY_USED, StateUse.EXPIRED])
def test_a_kite_callback_refusal_says_to_start_again_at_kite(use):
    with pytest.raises(LoginError) as refused:
        consume_login_state(States(use), "state", utcnow(), timedelta(minutes=10), KITE_START_AGAIN)
    assert "/kite/login" in refused.value.message and "/upstox/" not in refused.value.message


def test_a_rejected_token_is_told_with_the_brokers_own_name_and_login():
    class Tokens:
        policy = KITE

    kite = TokenAlerts(Tokens(), store=None, notifications=None)._rejected_message()
    assert kite.startswith("Kite rejected") and "/kite/login" in kite and "upstox" not in kite.lower()
    Tokens.policy = UPSTOX
    assert "/upstox/login" in TokenAlerts(Tokens(), store=None, notifications=None)._rejected_message()
