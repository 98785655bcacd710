"""Migration 001: events, stations, projections, downlink state.

``events`` is the system of record (every event as received, keyed by its id); the other
tables are projections maintained in the same transaction as the insert, so they are never
ahead of or behind what was acknowledged.
"""

SQL = r"""
CREATE TABLE stations (
    station_id        text PRIMARY KEY,
    epoch             integer NOT NULL DEFAULT 1,      -- bumped when a reinstalled station restarts at seq 1
    contiguous_seq    bigint NOT NULL DEFAULT 0,       -- every event up to here is stored and applied
    max_seq_seen      bigint NOT NULL DEFAULT 0,
    gap_since         timestamptz,                     -- when max_seq_seen first ran ahead of contiguous_seq
    availability      text,                            -- online / offline (retained topic)
    availability_at   timestamptz,
    agent_version     text,
    last_status       jsonb,
    status_at         timestamptz,
    pending           integer,                         -- from the station's status: not yet at the broker
    unconfirmed       integer,                         -- from the station's status: delivered, not yet acked
    clock_synced      boolean,                         -- of the last applied event
    last_event_at     timestamptz,
    directory_full_sent boolean NOT NULL DEFAULT false,
    first_seen        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    event_id        text PRIMARY KEY,
    station_id      text NOT NULL REFERENCES stations,
    epoch           integer NOT NULL,
    seq             bigint NOT NULL,
    type            text NOT NULL,
    schema_version  integer NOT NULL,
    created_at      text NOT NULL,
    clock_synced    boolean NOT NULL,
    payload         jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    -- applied = seq <= the station's contiguous_seq (same epoch); quarantined events count for
    -- the sequence but change no projection.
    state           text NOT NULL DEFAULT 'stored' CHECK (state IN ('stored', 'quarantined')),
    UNIQUE (station_id, epoch, seq)
);

-- Refused events: kept whole (nothing is lost), acknowledged, and alerted; the raw bytes when
-- the message could not even be read as a batch.
CREATE TABLE quarantine (
    quarantine_id   bigserial PRIMARY KEY,
    station_id      text,
    event_id        text,
    seq             bigint,
    type            text,
    reason          text NOT NULL,
    detail          text NOT NULL,
    raw             text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alerts (
    alert_id        bigserial PRIMARY KEY,
    station_id      text,
    source          text NOT NULL CHECK (source IN ('station', 'hub')),
    type            text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz
);
CREATE INDEX alerts_open ON alerts (created_at) WHERE resolved_at IS NULL;

CREATE TABLE replay_requests (
    request_id      text PRIMARY KEY,
    station_id      text NOT NULL REFERENCES stations,
    epoch           integer NOT NULL,
    from_seq        bigint NOT NULL,
    to_seq          bigint NOT NULL,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    answered_at     timestamptz,
    status          text NOT NULL DEFAULT 'requested',  -- requested / ok / partial / rejected / timed_out
    result          jsonb
);
CREATE INDEX replay_requests_open ON replay_requests (station_id) WHERE answered_at IS NULL;

-- ---- projections -----------------------------------------------------------------------------

CREATE TABLE customers (
    customer_id     text PRIMARY KEY,
    version         integer NOT NULL,
    document_country text NOT NULL,
    document_type   text NOT NULL,
    document_number text NOT NULL,
    data            jsonb NOT NULL,
    station_id      text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_document ON customers (document_country, document_type, document_number);

CREATE TABLE customer_history (
    customer_id     text NOT NULL,
    version         integer NOT NULL,
    event_id        text NOT NULL REFERENCES events,
    station_id      text NOT NULL,
    changes         jsonb,                             -- null for the creation
    actor           text,
    data            jsonb NOT NULL,
    at              text NOT NULL,
    PRIMARY KEY (customer_id, version, event_id)
);

CREATE TABLE biometric_enrollments (
    customer_id     text NOT NULL,
    finger          text NOT NULL,
    station_id      text NOT NULL,
    enrolled        boolean NOT NULL,
    event_id        text NOT NULL,
    PRIMARY KEY (customer_id, finger, station_id)
);

CREATE TABLE accounts (
    account_id      text PRIMARY KEY,
    customer_id     text,
    tier_id         text,
    is_fleet        boolean NOT NULL DEFAULT false,
    partner_member_id text,
    station_id      text,                              -- where it was opened
    created_at      text,
    balance         bigint NOT NULL DEFAULT 0,         -- chain-wide: every applied movement
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cards (
    card_number     text PRIMARY KEY,
    account_id      text REFERENCES accounts,
    role            text,
    state           text NOT NULL,
    issued_at       text,
    first_used_at   text,
    replaced_by     text,
    station_id      text,
    block_reason    text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cards_account ON cards (account_id);

CREATE TABLE point_movements (
    movement_id     text PRIMARY KEY,
    account_id      text NOT NULL REFERENCES accounts,
    station_id      text NOT NULL,
    ledger_seq      bigint,
    kind            text NOT NULL,                     -- earn / return / void / redeem
    points          bigint NOT NULL,
    card_number     text,
    reference_id    text,                              -- sale, reversal or redemption id
    occurred_at     text NOT NULL,
    event_id        text NOT NULL REFERENCES events
);
CREATE INDEX point_movements_account ON point_movements (account_id, occurred_at DESC);

-- Per account and station: the highest ledger seq of that station counted in accounts.balance
-- (a directory snapshot's station_seq).
CREATE TABLE account_station_seq (
    account_id      text NOT NULL REFERENCES accounts,
    station_id      text NOT NULL,
    ledger_seq      bigint NOT NULL,
    PRIMARY KEY (account_id, station_id)
);

CREATE TABLE sales (
    sale_id         text PRIMARY KEY,
    station_id      text NOT NULL,
    pos             text,
    receipt_number  text,
    account_id      text NOT NULL,
    card_number     text,
    attendant_id    text,
    program_version text,
    points          bigint NOT NULL,
    occurred_at     text NOT NULL,
    event_id        text NOT NULL REFERENCES events
);

-- Sale lines and reversal lines (negative points, kind return/void): what "by station and
-- article group" reports sum.
CREATE TABLE sale_lines (
    movement_id     text NOT NULL,
    line_no         integer NOT NULL,
    sale_id         text NOT NULL,
    station_id      text NOT NULL,
    kind            text NOT NULL,
    sku             text,
    article_group   text,
    quantity        numeric,
    amount          numeric,
    points          bigint NOT NULL,
    occurred_at     text NOT NULL,
    PRIMARY KEY (movement_id, line_no)
);
CREATE INDEX sale_lines_station_group ON sale_lines (station_id, article_group);

CREATE VIEW points_by_station_group AS
    SELECT station_id, article_group, sum(points) AS points, sum(amount) AS amount,
           sum(quantity) AS quantity, count(DISTINCT movement_id) AS movements
      FROM sale_lines GROUP BY station_id, article_group;

CREATE TABLE partner_accruals (
    movement_id     text PRIMARY KEY,
    program         text NOT NULL,
    member_id       text NOT NULL,
    miles           bigint NOT NULL,
    points          bigint NOT NULL,
    sale_id         text NOT NULL,
    station_id      text NOT NULL,
    account_id      text NOT NULL,
    occurred_at     text NOT NULL,
    event_id        text NOT NULL
);

CREATE TABLE reward_requests (
    redemption_id   text PRIMARY KEY,
    station_id      text NOT NULL,
    account_id      text NOT NULL,
    card_number     text,
    reward_id       text NOT NULL,
    quantity        integer NOT NULL,
    points          bigint NOT NULL,
    occurred_at     text NOT NULL,
    status          text NOT NULL DEFAULT 'requested',
    event_id        text NOT NULL
);

CREATE TABLE stock_movements (
    movement_id     text PRIMARY KEY,
    station_id      text NOT NULL,
    reward_id       text NOT NULL,
    kind            text NOT NULL,
    quantity        integer NOT NULL,
    stock_after     integer NOT NULL,
    redemption_id   text,
    document        text,
    at              text NOT NULL,
    event_id        text NOT NULL
);

CREATE TABLE station_stock (
    station_id      text NOT NULL,
    reward_id       text NOT NULL,
    stock           integer NOT NULL,
    low             boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station_id, reward_id)
);

CREATE TABLE attendant_lockouts (
    event_id        text PRIMARY KEY,
    station_id      text NOT NULL,
    attendant_id    text NOT NULL,
    lockout_number  integer,
    locked_until    text,
    failed_attempts integer
);

CREATE TABLE pin_bundle_imports (
    event_id        text PRIMARY KEY,
    station_id      text NOT NULL,
    version         bigint NOT NULL,
    attendants      integer NOT NULL
);

-- ---- downlink ----------------------------------------------------------------------------------

-- Accounts whose directory rows changed and are not yet published (drained by the publisher).
-- broadcast: the account or one of its cards changed (every station needs it); otherwise only
-- its balance did (sent to the stations that hold movements of the account, and its origin).
CREATE TABLE directory_changes (
    change_id       bigserial PRIMARY KEY,
    account_id      text NOT NULL,
    broadcast       boolean NOT NULL,
    station_id      text NOT NULL              -- whose event caused it
);

CREATE TABLE directory_state (
    one             integer PRIMARY KEY CHECK (one = 1),
    delta_seq       bigint NOT NULL            -- the last published delta's seq (chain-wide)
);
INSERT INTO directory_state VALUES (1, 0);
"""
