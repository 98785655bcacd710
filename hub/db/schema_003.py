"""Migration 003: the web app (issue 16): back-office users and sessions, attempt counters for
rate limiting, and enrollment requests from the public site."""

SQL = r"""
CREATE TABLE web_users (
    username        text PRIMARY KEY CHECK (username ~ '^[a-z0-9_.-]{3,40}$'),
    password_hash   text NOT NULL,                      -- argon2id
    role            text NOT NULL CHECK (role IN ('admin', 'manager', 'readonly')),
    station_id      text REFERENCES central_stations,  -- a station manager's station
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'manager') = (station_id IS NOT NULL))
);

CREATE TABLE web_sessions (
    token_hash      text PRIMARY KEY,                   -- sha256 of the cookie value (the cookie is never stored)
    username        text NOT NULL REFERENCES web_users,
    csrf            text NOT NULL,
    expires_at      timestamptz NOT NULL
);

-- One row per attempt, per bucket (client address, card, user name): shared by every web process.
CREATE TABLE web_attempts (
    bucket          text NOT NULL,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX web_attempts_bucket ON web_attempts (bucket, at);

CREATE TABLE enrollment_requests (
    request_id      bigserial PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    first_name      text NOT NULL,
    surname         text NOT NULL,
    document_country text NOT NULL,
    document_type   text NOT NULL,
    document_number text NOT NULL,
    phone           text,
    email           text,
    station_id      text REFERENCES central_stations,   -- where the customer will finish at the counter
    consent         boolean NOT NULL CHECK (consent),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'rejected'))
);
"""
