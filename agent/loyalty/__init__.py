"""Loyalty accounts, cards, earning rules, points ledger and rewards (issue 7)."""
