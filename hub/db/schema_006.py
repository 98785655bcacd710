"""Migration 006: fields the agent's events gained (issue 15 contract, agent on main).

A sale by document or customer id names its customer and how the POS identified them (no card);
a station's weekly replenishment request is kept as the station sent it, next to the hub's own
replenishment proposal (hub.central.rewards).
"""
SQL = r"""
ALTER TABLE sales ADD COLUMN customer_id text, ADD COLUMN identified_by text;

CREATE TABLE station_replenishments (
    replenishment_id text PRIMARY KEY,
    station_id       text NOT NULL,
    lines            jsonb NOT NULL,                    -- [{"reward_id", "quantity"}]
    at               text NOT NULL,
    event_id         text NOT NULL
);
"""
