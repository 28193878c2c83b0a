"""The names services/place.py and services/staged_bracket.py import from here, kept while those
modules are being rewritten elsewhere (issue 24); new code imports from the module that owns each.

What was one module is now one module per job: intent.py (what a caller asks for, the plan),
products.py, plan_checks.py, plan_single.py, plan_bracket.py, modify.py, book.py (the order book's
view of a broker GTT) and rule_status.py (what a rule's status means).
"""
from __future__ import annotations

from openalgo_gtt.domain.book import gtt_status
from openalgo_gtt.domain.intent import BRACKET, OCO, Plan

__all__ = ["BRACKET", "OCO", "Plan", "gtt_status"]
