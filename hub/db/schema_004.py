"""Migration 004: rewards logistics (issue 16): weekly consolidated orders of the scheduled
rewards customers requested, and shipments of consignment stock to the stations."""

SQL = r"""
CREATE TABLE reward_orders (
    order_id        text PRIMARY KEY,                   -- 'OC-<cutoff date>'
    cutoff          date NOT NULL UNIQUE,               -- requests up to the end of this day
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL
);

CREATE TABLE reward_order_requests (
    redemption_id   text PRIMARY KEY REFERENCES reward_requests,
    order_id        text NOT NULL REFERENCES reward_orders
);

CREATE TABLE reward_shipments (
    shipment_id     text PRIMARY KEY,                   -- the document the station types at receipt
    station_id      text NOT NULL,
    reward_id       text NOT NULL,
    quantity        integer NOT NULL CHECK (quantity > 0),
    reason          text NOT NULL CHECK (reason IN ('replenishment', 'scheduled', 'transfer')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL
);
"""
