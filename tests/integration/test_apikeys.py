"""API keys: random, shown once, argon2-hashed, cached, revocable at once."""
from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from openalgo_gtt.services.apikeys import ApiKeyError, ApiKeyService
from openalgo_gtt.store.db import make_session_factory
from openalgo_gtt.store.models import ApiKey

PEPPER = "q" * 40


class CountingHasher(PasswordHasher):
    def __init__(self):
        super().__init__()
        self.verifications = 0

    def verify(self, hash, password):  # noqa: A002 - argon2's own parameter name
        self.verifications += 1
        return super().verify(hash, password)


@pytest.fixture
def sessions(db_engine):
    return make_session_factory(db_engine)


@pytest.fixture
def hasher():
    return CountingHasher()


@pytest.fixture
def keys(sessions, hasher):
    return ApiKeyService(sessions, PEPPER, hasher)


def test_a_key_is_an_identifier_and_64_hex_characters_and_only_its_argon2_hash_and_hmac_are_stored(keys, sessions):
    key = keys.create("alice")
    public_id, secret = key.split(".")
    assert len(public_id) == 16 and int(public_id, 16) >= 0
    assert len(secret) == 64 and int(secret, 16) >= 0
    with sessions() as session:
        stored = session.scalar(select(ApiKey).where(ApiKey.name == "alice"))
    assert stored.key_hash.startswith("$argon2")
    assert key not in stored.key_hash and secret not in stored.key_hash
    assert stored.public_id == public_id
    assert len(stored.lookup_hmac) == 64 and secret not in stored.lookup_hmac  # an HMAC under the pepper


def test_verify_costs_no_argon2_and_then_comes_from_the_cache(keys, hasher, sessions, monkeypatch):
    key = keys.create("alice")
    reads = []
    real = keys._store.active_by_public_id
    monkeypatch.setattr(keys._store, "active_by_public_id", lambda public_id: reads.append(1) or real(public_id))
    assert keys.verify(key).name == "alice"
    assert keys.verify(key).name == "alice"
    assert keys.verify(key).name == "alice"
    assert hasher.verifications == 0 and len(reads) == 1


def test_a_flood_of_one_bad_key_costs_no_argon2(keys, hasher):
    public_id = keys.create("alice").split(".")[0]
    bad = public_id + "." + "0" * 64  # the right identifier, a wrong secret
    for _ in range(50):
        assert keys.verify(bad) is None
    assert hasher.verifications == 0


@pytest.mark.parametrize("junk", [None, "", 12345, ["a"], "x" * 1000])
def test_missing_or_malformed_keys_are_refused_without_argon2(keys, hasher, junk):
    keys.create("alice")
    assert keys.verify(junk) is None
    assert hasher.verifications == 0


def test_the_pepper_is_part_of_the_hash(sessions, keys):
    key = keys.create("alice")
    other_pepper = ApiKeyService(sessions, "z" * 40)
    assert other_pepper.verify(key) is None


def test_revocation_in_another_process_takes_effect_within_a_second(sessions, hasher):
    now = [1000.0]
    keys = ApiKeyService(sessions, PEPPER, hasher, clock=lambda: now[0])
    key = keys.create("alice")
    assert keys.verify(key) is not None  # cached as good in this "process"
    command_line = ApiKeyService(sessions, PEPPER)  # `python run.py apikey revoke` elsewhere
    command_line.revoke("alice")
    now[0] += 0.5
    assert keys.verify(key) is not None  # seen unrevoked half a second ago: not read again yet
    now[0] += 0.6
    assert keys.verify(key) is None
    now[0] += 10
    assert keys.verify(key) is None  # and it stays refused


def test_revocation_in_the_same_process_takes_effect_at_once(keys):
    key = keys.create("alice")
    assert keys.verify(key) is not None
    keys.revoke("alice")
    assert keys.verify(key) is None


def test_two_keys_each_verify_to_their_own_name(keys):
    a, b = keys.create("alice"), keys.create("bob")
    assert keys.verify(a).name == "alice"
    assert keys.verify(b).name == "bob"


def test_duplicate_and_unknown_names(keys):
    keys.create("alice")
    with pytest.raises(ApiKeyError, match="already exists"):
        keys.create("alice")
    with pytest.raises(ApiKeyError, match="no active key"):
        keys.revoke("nobody")
    with pytest.raises(ApiKeyError):
        keys.create("   ")


def test_list_shows_names_and_use_never_keys(keys):
    key = keys.create("alice")
    keys.verify(key)
    listed = keys.list()
    assert [k.name for k in listed] == ["alice"]
    assert listed[0].last_used_at is not None
    assert key not in repr(listed)


def test_a_burst_with_a_key_made_before_its_hmac_pays_for_one_argon2_check(keys, hasher, sessions):
    import secrets
    import threading

    from openalgo_gtt.domain.clock import utcnow
    from sqlalchemy import insert

    public_id = secrets.token_hex(8)
    key = f"{public_id}.{secrets.token_hex(32)}"
    with sessions.begin() as session:
        session.execute(insert(ApiKey).values(name="alice", public_id=public_id, created_at=utcnow(),
                                              key_hash=PasswordHasher().hash(key + PEPPER)))
    start, results = threading.Barrier(12), []

    def verify():
        start.wait()
        results.append(keys.verify(key))

    threads = [threading.Thread(target=verify) for _ in range(12)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert [r.name for r in results] == ["alice"] * 12
    assert hasher.verifications == 1
