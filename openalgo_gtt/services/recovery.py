"""Settling places whose outcome was lost (a timeout, a crash between the broker call and the
record). Each open request record with an intent is looked up at the broker (one list call a
pass): a GTT found is recorded and its request answered. One not found is still settling while
its window (SETTLE_SECONDS from the attempt's start) lasts, since the broker may yet create it;
after the window it lapses: its trade is given back and its intent kept aside for a very late
GTT (services/late_gtts.py). The watcher runs this under its lease, every poll (so a settling
place is looked for a few times within its window), and every process once before it serves."""
from __future__ import annotations

from openalgo_gtt.brokers.errors import BrokerError
from openalgo_gtt.domain.clock import utcnow
from openalgo_gtt.domain.records import AuditEntry
from openalgo_gtt.services.answers import answer_for
from openalgo_gtt.services.audit import AuditTrail
from openalgo_gtt.services.exactly_once import ExactlyOnce
from openalgo_gtt.services.place import PlaceGtt
from openalgo_gtt.store.request_records import DONE, FAULT, RequestRecords


class Recovery:
    def __init__(self, records: RequestRecords, place: PlaceGtt, audit: AuditTrail, exactly_once: ExactlyOnce):
        self._records = records
        self._place = place
        self._audit = audit
        self._exactly_once = exactly_once

    def settle_unsettled(self) -> int:
        """Settle every open place whose outcome can be known now; returns how many were settled."""
        self._records.purge_expired()  # answered records past their window
        settled = 0
        listed = None
        for snapshot in self._records.unsettled(self._exactly_once.stale_after):
            if not self._records.take_over(snapshot):
                continue
            try:
                listed = self._place.broker.list_gtts() if listed is None else listed
                placed = self._place.recover(snapshot.plan, snapshot.attempt_started_at, listed,
                                                record_id=snapshot.id)
            except BrokerError:
                self._records.finish(snapshot.id, FAULT, snapshot.response_status, None, keep_reservation=True)
                raise  # the broker is failing: the next pass tries again
            started = snapshot.attempt_started_at or utcnow()
            if placed is None and utcnow() < started + self._place.settle:
                # Still settling: back to fault with its intent and trade, looked for again next pass.
                self._records.finish(snapshot.id, FAULT, snapshot.response_status, None, keep_reservation=True)
                continue
            if placed is None:
                self._place.lapse(snapshot.id, snapshot.plan, started, snapshot.reserved_day)
            # Kept for duplicates: the answer a normal place gives, under the original request's id.
            request_id = snapshot.plan["order"].get("request_id")
            body = None if placed is None else {**answer_for(snapshot.endpoint)(placed), "request_id": request_id}
            self._records.finish(snapshot.id, DONE if placed else FAULT, 200 if placed else None, body,
                                 keep_reservation=False, forget_plan=True)
            if placed is not None:
                self._audit_recovered(snapshot.plan["order"], body)
            settled += 1
        return settled

    def _audit_recovered(self, order: dict, body: dict) -> None:
        """The audit row of a place whose process stopped after the broker call and before its
        own row was written (it writes it just after answering): one row per request, always."""
        request_id = order.get("request_id")
        if not request_id or self._audit.exists(request_id):
            return
        self._audit.write(AuditEntry(
            request_id=request_id, created_at=utcnow(), method="POST", endpoint="(recovered place)",
            client_addr=None, api_key_name=order.get("api_key_name"), request_body=None,
            response_body=body, http_status=200, latency_ms=0.0,
            error="the process stopped before recording this place (its answer may not have reached the "
                  "caller); the GTT was found at the broker and recorded",
        ))
