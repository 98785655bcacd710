"""Migration 002: the central administration (issue 16).

Authored configuration and what was published (signed) from it, attendants and their PIN
bundles, the monthly close (expiries, fleet aggregation, settlement) and the audit trail.
PINs are never stored: only the argon2id hash of HMAC(station pepper, PIN) that the station
verifies; the peppers and the signing key live in files (hub.central.keys).
"""

SQL = r"""
CREATE TABLE central_stations (
    station_id      text PRIMARY KEY,
    name            text NOT NULL,
    point_value     numeric(14, 4) NOT NULL CHECK (point_value >= 0),  -- money per point, for the settlement
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE attendants (
    station_id      text NOT NULL REFERENCES central_stations,
    attendant_id    text NOT NULL,
    display_name    text NOT NULL,
    pin_hash        text,                               -- argon2id PHC of HMAC(pepper, PIN); null = no PIN yet
    pin_set_at      timestamptz,
    locked          boolean NOT NULL DEFAULT false,     -- locked attendants are left out of the bundle
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, attendant_id)
);

CREATE TABLE pin_bundles (
    station_id      text NOT NULL REFERENCES central_stations,
    version         integer NOT NULL,
    issued_at       timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    attendants      integer NOT NULL,
    body            text NOT NULL,                      -- the signed bundle, exactly as published
    published_at    timestamptz,
    PRIMARY KEY (station_id, version)
);

-- What the back office edits: one validated JSON document per kind.
CREATE TABLE config_authored (
    kind            text PRIMARY KEY CHECK (kind IN ('program', 'tiers', 'messages', 'rewards')),
    body            jsonb NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      text NOT NULL
);

-- Every signed document published, by topic kind (earning_rules, directory): re-publishable.
CREATE TABLE config_published (
    kind            text NOT NULL,
    version         bigint NOT NULL,
    body            text NOT NULL,
    published_at    timestamptz NOT NULL DEFAULT now(),
    published_by    text NOT NULL,
    PRIMARY KEY (kind, version)
);

CREATE TABLE audit_log (
    audit_id        bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor           text NOT NULL,
    action          text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}'
);

-- ---- monthly close ------------------------------------------------------------------------------

CREATE TABLE fleet_owners (
    account_id      text PRIMARY KEY,                   -- a fleet (vehicle) account
    owner_account_id text NOT NULL                      -- the owner's account that receives its points
);

CREATE TABLE monthly_closes (
    month           date PRIMARY KEY,                   -- first day of the closed month
    first_closed_at timestamptz NOT NULL DEFAULT now(),
    first_closed_by text NOT NULL,
    last_run_at     timestamptz NOT NULL DEFAULT now(),
    last_run_by     text NOT NULL,
    runs            integer NOT NULL DEFAULT 1,
    expiry_cutoff   date NOT NULL,
    summary         jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE point_expiries (
    month           date NOT NULL REFERENCES monthly_closes,
    account_id      text NOT NULL,
    points          bigint NOT NULL CHECK (points > 0),
    PRIMARY KEY (month, account_id)
);

CREATE TABLE fleet_transfers (
    month           date NOT NULL REFERENCES monthly_closes,
    account_id      text NOT NULL,
    owner_account_id text NOT NULL,
    points          bigint NOT NULL,
    PRIMARY KEY (month, account_id)
);

CREATE TABLE settlement_lines (
    month           date NOT NULL REFERENCES monthly_closes,
    station_id      text NOT NULL,
    article_group   text NOT NULL,
    points          bigint NOT NULL,
    point_value     numeric(14, 4),                     -- null: the station has no point value configured
    amount          numeric(18, 4),
    PRIMARY KEY (month, station_id, article_group)
);

CREATE TABLE settlement_incomplete (
    month           date NOT NULL REFERENCES monthly_closes,
    station_id      text NOT NULL,
    reason          text NOT NULL,
    PRIMARY KEY (month, station_id)
);
CREATE INDEX sale_lines_occurred ON sale_lines (occurred_at);
CREATE INDEX point_movements_occurred ON point_movements (occurred_at);
"""
