"""Core tables: customers, their change history, API tokens, idempotency records, outbox."""
from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "core_001_customers",
        """
        CREATE TABLE customers (
            id              TEXT PRIMARY KEY,
            doc_country     TEXT NOT NULL,
            doc_type        TEXT NOT NULL,
            doc_number      TEXT NOT NULL,          -- compact form
            kind            TEXT NOT NULL,
            loyalty_id      TEXT,
            search_name     TEXT NOT NULL DEFAULT '',
            data            TEXT NOT NULL,          -- the customer document (JSON)
            version         INTEGER NOT NULL DEFAULT 1,
            created_at      TEXT NOT NULL,
            updated_at      TEXT NOT NULL
        );
        CREATE UNIQUE INDEX customers_document ON customers(doc_country, doc_type, doc_number);
        CREATE UNIQUE INDEX customers_loyalty_id ON customers(loyalty_id) WHERE loyalty_id IS NOT NULL;
        CREATE VIRTUAL TABLE customers_fts USING fts5(
            search_name, content='customers', content_rowid='rowid',
            tokenize="unicode61 remove_diacritics 2"
        );
        CREATE TRIGGER customers_fts_ai AFTER INSERT ON customers BEGIN
            INSERT INTO customers_fts(rowid, search_name) VALUES (new.rowid, new.search_name);
        END;
        CREATE TRIGGER customers_fts_ad AFTER DELETE ON customers BEGIN
            INSERT INTO customers_fts(customers_fts, rowid, search_name) VALUES ('delete', old.rowid, old.search_name);
        END;
        CREATE TRIGGER customers_fts_au AFTER UPDATE OF search_name ON customers BEGIN
            INSERT INTO customers_fts(customers_fts, rowid, search_name) VALUES ('delete', old.rowid, old.search_name);
            INSERT INTO customers_fts(rowid, search_name) VALUES (new.rowid, new.search_name);
        END;
        CREATE TABLE customer_changes (
            id          INTEGER PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            field       TEXT NOT NULL,
            old         TEXT,                       -- JSON
            new         TEXT,                       -- JSON
            at          TEXT NOT NULL,
            actor       TEXT NOT NULL
        );
        CREATE INDEX customer_changes_by_customer ON customer_changes(customer_id, at);
        """,
    ),
    (
        "core_002_api_tokens",
        """
        CREATE TABLE api_tokens (
            id          TEXT PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE,
            token_hash  TEXT NOT NULL UNIQUE,       -- SHA-256 of the token; the token itself is never stored
            created_at  TEXT NOT NULL,
            revoked_at  TEXT
        );
        """,
    ),
    (
        "core_003_idempotency",
        """
        CREATE TABLE idempotency_keys (
            client      TEXT NOT NULL,
            key         TEXT NOT NULL,
            fingerprint TEXT NOT NULL,              -- SHA-256 of method, path and body
            status      INTEGER NOT NULL,
            body        TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            PRIMARY KEY (client, key)
        );
        CREATE INDEX idempotency_keys_age ON idempotency_keys(created_at);
        """,
    ),
    (
        "core_004_outbox",
        """
        -- AUTOINCREMENT never reuses a number and rolls back with its transaction: the
        -- sequence is gap-free per station, which is what head office checks.
        CREATE TABLE outbox (
            seq             INTEGER PRIMARY KEY AUTOINCREMENT,
            id              TEXT NOT NULL UNIQUE,
            type            TEXT NOT NULL,
            schema_version  INTEGER NOT NULL,
            payload         TEXT NOT NULL,
            created_at      TEXT NOT NULL,
            clock_synced    INTEGER NOT NULL,
            size            INTEGER NOT NULL,
            state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','confirmed')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            sent_at         TEXT,
            delivered_at    TEXT,
            confirmed_at    TEXT
        );
        CREATE INDEX outbox_unconfirmed ON outbox(state, seq) WHERE state != 'confirmed';
        CREATE INDEX outbox_confirmed_at ON outbox(confirmed_at) WHERE state = 'confirmed';
        -- Running totals so the disk budget check is O(1) on every append.
        CREATE TABLE outbox_totals (
            one             INTEGER PRIMARY KEY CHECK (one = 1),
            pending_count   INTEGER NOT NULL,
            pending_bytes   INTEGER NOT NULL,
            max_bytes       INTEGER,                -- disk budget; NULL = unlimited
            max_age_s       INTEGER,                -- oldest unconfirmed event allowed; NULL = unlimited
            refused_count   INTEGER NOT NULL DEFAULT 0,
            last_refused_at TEXT
        );
        INSERT INTO outbox_totals(one, pending_count, pending_bytes) VALUES (1, 0, 0);
        CREATE TRIGGER outbox_totals_ai AFTER INSERT ON outbox BEGIN
            UPDATE outbox_totals SET pending_count = pending_count + 1, pending_bytes = pending_bytes + new.size;
        END;
        CREATE TRIGGER outbox_totals_confirm AFTER UPDATE OF state ON outbox
            WHEN new.state = 'confirmed' AND old.state != 'confirmed' BEGIN
            UPDATE outbox_totals SET pending_count = pending_count - 1, pending_bytes = pending_bytes - new.size;
        END;
        """,
    ),
]

MIGRATIONS += [
    (
        "core_005_sync_state",
        """
        CREATE TABLE sync_state (
            one             INTEGER PRIMARY KEY CHECK (one = 1),
            last_success_at TEXT,                   -- last head-office confirmation
            last_error      TEXT
        );
        INSERT INTO sync_state(one) VALUES (1);
        -- Configuration documents received from head office (downlink), one row per kind.
        CREATE TABLE downlink_state (
            name        TEXT PRIMARY KEY,
            version     INTEGER NOT NULL,
            digest      TEXT NOT NULL,
            applied_at  TEXT NOT NULL
        );
        """,
    ),
]

MIGRATIONS += [
    (
        "core_006_outbox_reopen_totals",
        """
        -- A replay moves confirmed events back to pending: count them again, by trigger, so the
        -- running totals can never drift from the rows (they are what the disk budget reads).
        CREATE TRIGGER outbox_totals_reopen AFTER UPDATE OF state ON outbox
            WHEN old.state = 'confirmed' AND new.state != 'confirmed' BEGIN
            UPDATE outbox_totals SET pending_count = pending_count + 1, pending_bytes = pending_bytes + new.size;
        END;
        UPDATE outbox_totals SET
            pending_count = (SELECT count(*) FROM outbox WHERE state != 'confirmed'),
            pending_bytes = (SELECT coalesce(sum(size), 0) FROM outbox WHERE state != 'confirmed');
        """,
    ),
]

MIGRATIONS += [
    (
        "core_007_document_identity",
        """
        -- A CUIL is the person's CUIT: one lookup key (agent.customers.documents.identity_type).
        -- OR IGNORE: a station that already holds both keeps both rows rather than failing to start.
        UPDATE OR IGNORE customers SET doc_type = 'CUIT' WHERE doc_country = 'AR' AND doc_type = 'CUIL';
        -- Leading zeros of a RUT or an Argentine DNI are padding: store the number without them.
        UPDATE OR IGNORE customers
            SET doc_number = ltrim(doc_number, '0'),
                data = json_set(data, '$.document.number', ltrim(doc_number, '0'))
            WHERE ((doc_country = 'CL' AND doc_type = 'RUT') OR (doc_country = 'AR' AND doc_type = 'DNI'))
              AND doc_number LIKE '0%' AND ltrim(doc_number, '0') != '';
        -- Loyalty ids are printed codes: one spelling, upper case, so a search in any case finds them.
        UPDATE OR IGNORE customers
            SET loyalty_id = upper(loyalty_id), data = json_set(data, '$.loyalty_id', upper(loyalty_id))
            WHERE loyalty_id IS NOT NULL AND loyalty_id != upper(loyalty_id);
        -- Search by a number alone (no country or type, seed 004's "código, cédula/NIT") must not
        -- scan a million rows.
        CREATE INDEX customers_doc_number ON customers(doc_number);
        """,
    ),
]

MIGRATIONS += [
    (
        "core_008_storage_reserve",
        """
        -- Free disk space kept for what must never be refused (security events, head office's
        -- acknowledgements, checkpoints): business work past it is a 507 storage_full.
        ALTER TABLE outbox_totals ADD COLUMN min_free_bytes INTEGER;
        """,
    ),
]

MIGRATIONS += [
    (
        "core_009_outbox_set_aside",
        """
        -- An event larger than the broker accepts is set aside with one alert (the publisher);
        -- recorded so a restart neither alerts again nor retries it, and so the age budget does
        -- not count it (it would otherwise stop the station once it grew old).
        ALTER TABLE outbox ADD COLUMN set_aside_at TEXT;
        CREATE INDEX outbox_set_aside ON outbox(seq) WHERE set_aside_at IS NOT NULL;
        """,
    ),
]
