"""Throttle digests: the hits a throttled rule produced within one window, as one message.

A rule with ``throttle: 10m`` sends its first hit to each sink at once; hits that come due
while that sink's window for the rule is open are folded (their deliveries wait, stored, until
the window ends) and then go out together as one digest, which opens the next window.

The digest is delivered like a hit. Its JSON (the body a webhook receives)::

    {"type": "digest", "id": "d_…", "rule": {"id": "…", "name": "…"}, "count": 3,
     "hits": [<hit JSON>, …], "detected_at": "<latest detected_at of the hits>"}

``id`` (also the ``webhook-id``) is derived from the sink, the rule and the sorted hit ids, and
the body from the hits alone, so every attempt of the same digest is byte-for-byte the same.
Hits are in the order they were recorded (oldest first). A digest that fails is retried
with the same hits, hence the same id and body.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from monitor.hit import Hit
from monitor.store.base import Pending

DIGEST = "digest"


def digest_id(sink: str, rule_id: str, hit_ids: list[str]) -> str:
    """Stable id of the digest of ``hit_ids`` for ``sink`` and ``rule_id``."""
    key = "\x00".join([sink, rule_id, *sorted(hit_ids)])
    return "d_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def is_digest_id(hid: str) -> bool:
    """Whether ``hid`` is a digest's id rather than a hit's."""
    return hid.startswith("d_")


def digest_hit(sink: str, rule_id: str, pendings: list[Pending]) -> Hit:
    """One Hit whose body is the digest of ``pendings`` (all of one rule)."""
    hits = [json.loads(p.body) for p in pendings]
    did = digest_id(sink, rule_id, [p.hit_id for p in pendings])
    detected = [h.get("detected_at") for h in hits if isinstance(h.get("detected_at"), str)]
    doc: dict[str, Any] = {
        "type": DIGEST,
        "id": did,
        "rule": _rule(hits, rule_id),
        "count": len(hits),
        "hits": hits,
        "detected_at": max(detected) if detected else None,
    }
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return Hit(did, rule_id, "", body)


def is_digest(data: dict[str, Any]) -> bool:
    """Whether a delivery body (parsed) is a digest rather than a hit."""
    return data.get("type") == DIGEST


def _rule(hits: list[dict[str, Any]], rule_id: str) -> dict[str, Any]:
    for hit in hits:
        rule = hit.get("rule")
        if isinstance(rule, dict):
            return {"id": rule_id, "name": rule.get("name", rule_id)}
    return {"id": rule_id, "name": rule_id}
