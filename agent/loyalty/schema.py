"""Loyalty tables. Register this module (``agent.loyalty.schema``) in ``agent.store.migrations``.

Amounts and quantities are stored as Decimal text (exact); points are integers. The ledger's
``seq`` is this station's gap-free movement number: head office's balance snapshot says up to
which ``seq`` it already counted, so balance = snapshot + local movements after that seq.
"""
from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "loyalty_001_directory",
        """
        CREATE TABLE loyalty_tiers (
            tier_id     TEXT PRIMARY KEY,
            name        TEXT NOT NULL,
            multiplier  TEXT NOT NULL,                  -- Decimal
            updated_at  TEXT NOT NULL
        );
        CREATE TABLE loyalty_accounts (
            account_id          TEXT PRIMARY KEY,
            customer_id         TEXT,                   -- core customers.id when enrolled here
            tier_id             TEXT,
            is_fleet            INTEGER NOT NULL DEFAULT 0 CHECK (is_fleet IN (0, 1)),
            partner_member_id   TEXT,                   -- partner miles opt-in (NULL = not opted in)
            snapshot_balance    INTEGER NOT NULL DEFAULT 0,
            snapshot_expiring   INTEGER NOT NULL DEFAULT 0,   -- points expiring at next monthly close
            snapshot_next_close TEXT,                   -- date of that close, from head office
            snapshot_as_of      TEXT,
            snapshot_seq        INTEGER NOT NULL DEFAULT 0,   -- our ledger seq already counted
            origin              TEXT NOT NULL CHECK (origin IN ('local', 'directory')),
            created_at          TEXT NOT NULL,
            updated_at          TEXT NOT NULL
        );
        CREATE TABLE loyalty_cards (
            card_number   TEXT PRIMARY KEY,
            account_id    TEXT REFERENCES loyalty_accounts(account_id),
            role          TEXT CHECK (role IN ('primary', 'additional', 'vehicle')),
            state         TEXT NOT NULL CHECK (state IN ('unassigned', 'issued', 'blocked', 'replaced')),
            issued_at     TEXT,
            first_used_at TEXT,
            replaced_by   TEXT,
            updated_at    TEXT NOT NULL,
            CHECK ((state = 'unassigned') = (account_id IS NULL))
        ) WITHOUT ROWID;
        CREATE INDEX loyalty_cards_by_account ON loyalty_cards(account_id) WHERE account_id IS NOT NULL;
        CREATE TABLE loyalty_directory_state (
            one       INTEGER PRIMARY KEY CHECK (one = 1),
            last_seq  INTEGER NOT NULL
        );
        INSERT INTO loyalty_directory_state(one, last_seq) VALUES (1, 0);
        CREATE TABLE loyalty_remote_movements (
            movement_id TEXT PRIMARY KEY,
            account_id  TEXT NOT NULL,
            kind        TEXT NOT NULL,
            points      INTEGER NOT NULL,
            station     TEXT NOT NULL,
            occurred_at TEXT NOT NULL
        );
        CREATE INDEX loyalty_remote_movements_by_account ON loyalty_remote_movements(account_id, occurred_at);
        CREATE TABLE loyalty_messages (
            message_id   TEXT PRIMARY KEY,
            target_type  TEXT NOT NULL CHECK (target_type IN ('card', 'account', 'tier', 'all')),
            target_value TEXT NOT NULL DEFAULT '',
            text_es      TEXT NOT NULL,
            text_en      TEXT,
            valid_from   TEXT NOT NULL,
            valid_to     TEXT NOT NULL
        );
        CREATE INDEX loyalty_messages_target ON loyalty_messages(target_type, target_value);
        CREATE TABLE loyalty_rule_program (
            one         INTEGER PRIMARY KEY CHECK (one = 1),
            version     TEXT NOT NULL,
            program     TEXT NOT NULL,                  -- RuleProgram JSON
            applied_at  TEXT NOT NULL
        );
        """,
    ),
    (
        "loyalty_002_ledger",
        """
        CREATE TABLE loyalty_sales (
            sale_id         TEXT PRIMARY KEY,
            station         TEXT NOT NULL,
            pos             TEXT NOT NULL,
            number          TEXT NOT NULL,
            idempotency_key TEXT UNIQUE,
            fingerprint     TEXT NOT NULL,
            account_id      TEXT NOT NULL,
            card_number     TEXT NOT NULL,
            session_id      TEXT NOT NULL,
            occurred_at     TEXT NOT NULL,
            total_amount    TEXT NOT NULL,
            points          INTEGER NOT NULL CHECK (points >= 0),
            reversed_points INTEGER NOT NULL DEFAULT 0 CHECK (reversed_points BETWEEN 0 AND points),
            voided          INTEGER NOT NULL DEFAULT 0,
            response        TEXT NOT NULL,
            UNIQUE (station, pos, number)
        );
        CREATE TABLE loyalty_sale_lines (
            sale_id         TEXT NOT NULL REFERENCES loyalty_sales(sale_id),
            line_no         INTEGER NOT NULL,
            sku             TEXT NOT NULL,
            article_group   TEXT,
            quantity        TEXT NOT NULL,
            amount          TEXT NOT NULL,
            points          INTEGER NOT NULL CHECK (points >= 0),
            returned_amount TEXT NOT NULL DEFAULT '0',
            returned_quantity TEXT NOT NULL DEFAULT '0',
            reversed_points INTEGER NOT NULL DEFAULT 0 CHECK (reversed_points BETWEEN 0 AND points),
            PRIMARY KEY (sale_id, line_no)
        ) WITHOUT ROWID;
        CREATE TABLE loyalty_reversals (
            reversal_id     TEXT PRIMARY KEY,
            sale_id         TEXT NOT NULL REFERENCES loyalty_sales(sale_id),
            kind            TEXT NOT NULL CHECK (kind IN ('return', 'void')),
            station         TEXT NOT NULL,
            pos             TEXT NOT NULL,
            number          TEXT NOT NULL,
            idempotency_key TEXT UNIQUE,
            fingerprint     TEXT NOT NULL,
            reason          TEXT NOT NULL,
            points          INTEGER NOT NULL CHECK (points >= 0),
            occurred_at     TEXT NOT NULL,
            response        TEXT NOT NULL,
            UNIQUE (station, pos, number)
        );
        CREATE INDEX loyalty_reversals_by_sale ON loyalty_reversals(sale_id);
        CREATE TABLE loyalty_ledger (
            seq            INTEGER PRIMARY KEY AUTOINCREMENT,
            movement_id    TEXT NOT NULL UNIQUE,
            account_id     TEXT NOT NULL,
            card_number    TEXT,
            kind           TEXT NOT NULL CHECK (kind IN ('earn', 'reversal', 'redeem')),
            points         INTEGER NOT NULL,           -- signed
            station        TEXT NOT NULL,
            occurred_at    TEXT NOT NULL,
            reference_id   TEXT NOT NULL               -- sale, reversal or redemption id
        );
        CREATE INDEX loyalty_ledger_by_account ON loyalty_ledger(account_id, seq);
        """,
    ),
    (
        "loyalty_003_rewards",
        """
        CREATE TABLE loyalty_rewards (
            reward_id   TEXT PRIMARY KEY,
            name        TEXT NOT NULL,
            points_cost INTEGER NOT NULL CHECK (points_cost > 0),
            delivery    TEXT NOT NULL CHECK (delivery IN ('immediate', 'scheduled')),
            active      INTEGER NOT NULL DEFAULT 1,
            updated_at  TEXT NOT NULL
        );
        CREATE TABLE loyalty_reward_stock (
            reward_id     TEXT PRIMARY KEY REFERENCES loyalty_rewards(reward_id),
            quantity      INTEGER NOT NULL DEFAULT 0 CHECK (quantity >= 0),
            low_threshold INTEGER NOT NULL DEFAULT 0 CHECK (low_threshold >= 0)
        );
        CREATE TABLE loyalty_stock_movements (
            movement_id   TEXT PRIMARY KEY,
            reward_id     TEXT NOT NULL REFERENCES loyalty_rewards(reward_id),
            kind          TEXT NOT NULL CHECK (kind IN ('receipt', 'consignment_transfer_in', 'grant')),
            quantity      INTEGER NOT NULL,            -- signed: grants are negative
            document      TEXT,
            occurred_at   TEXT NOT NULL,
            UNIQUE (kind, document)
        );
        CREATE TABLE loyalty_redemptions (
            redemption_id   TEXT PRIMARY KEY,
            idempotency_key TEXT UNIQUE,
            fingerprint     TEXT NOT NULL,
            account_id      TEXT NOT NULL,
            card_number     TEXT NOT NULL,
            session_id      TEXT NOT NULL,
            reward_id       TEXT NOT NULL REFERENCES loyalty_rewards(reward_id),
            quantity        INTEGER NOT NULL CHECK (quantity > 0),
            points          INTEGER NOT NULL CHECK (points > 0),
            delivery        TEXT NOT NULL,
            status          TEXT NOT NULL CHECK (status IN ('delivered', 'requested')),
            occurred_at     TEXT NOT NULL,
            response        TEXT NOT NULL
        );
        """,
    ),
    (
        "loyalty_004_idempotency_keys",
        """
        -- Idempotency keys now live in idempotency_keys with those of every other service
        -- (agent/store/idempotency.py) and expire like them. The idempotency_key column of the
        -- bookings is no longer written. Keys of earlier bookings are carried over, so a retry
        -- that straddles the upgrade still gets its first answer.
        INSERT OR IGNORE INTO idempotency_keys(client, key, fingerprint, status, body, created_at)
            SELECT 'loyalty:sales', idempotency_key, fingerprint, 0, response, occurred_at
            FROM loyalty_sales WHERE idempotency_key IS NOT NULL;
        INSERT OR IGNORE INTO idempotency_keys(client, key, fingerprint, status, body, created_at)
            SELECT 'loyalty:reversals', idempotency_key, fingerprint, 0, response, occurred_at
            FROM loyalty_reversals WHERE idempotency_key IS NOT NULL;
        INSERT OR IGNORE INTO idempotency_keys(client, key, fingerprint, status, body, created_at)
            SELECT 'loyalty:redemptions', idempotency_key, fingerprint, 0, response, occurred_at
            FROM loyalty_redemptions WHERE idempotency_key IS NOT NULL;
        """,
    ),
    (
        "loyalty_005_customer_sales",
        """
        -- The customer behind each sale (by document, by id, or the swiped card's account holder),
        -- for the purchase history (seed 000: warranty found "through their RUT"). A sale
        -- identified by document has no card and no swipe: card_number and session_id are ''
        -- (the columns are NOT NULL and SQLite cannot relax that without rebuilding tables that
        -- other tables reference).
        ALTER TABLE loyalty_sales ADD COLUMN customer_id TEXT;
        ALTER TABLE loyalty_sales ADD COLUMN identified_by TEXT NOT NULL DEFAULT 'card'
            CHECK (identified_by IN ('card', 'document', 'customer_id'));
        UPDATE loyalty_sales SET customer_id =
            (SELECT a.customer_id FROM loyalty_accounts a WHERE a.account_id = loyalty_sales.account_id);
        CREATE INDEX loyalty_sales_by_customer ON loyalty_sales(customer_id, occurred_at, sale_id)
            WHERE customer_id IS NOT NULL;
        CREATE INDEX loyalty_accounts_by_customer ON loyalty_accounts(customer_id, created_at)
            WHERE customer_id IS NOT NULL;
        """,
    ),
    (
        "loyalty_006_station_stock",
        """
        -- Seed 002, rewards stock at the station: transfers out, shipment receipts ("registro de
        -- envíos y comprobantes de recepción"), stock counts with their differences (audit), and
        -- the replenishment record every grant makes, consolidated weekly. The CHECK on kind
        -- changes, so the table is rebuilt (nothing references it).
        CREATE TABLE loyalty_stock_movements_v2 (
            movement_id      TEXT PRIMARY KEY,
            reward_id        TEXT NOT NULL REFERENCES loyalty_rewards(reward_id),
            kind             TEXT NOT NULL CHECK (kind IN ('receipt', 'consignment_transfer_in', 'shipment_receipt',
                                                           'transfer_out', 'grant', 'count')),
            quantity         INTEGER NOT NULL,          -- signed change of the station's stock
            document         TEXT,
            occurred_at      TEXT NOT NULL,
            counted          INTEGER,                   -- count: what was on the shelf
            expected         INTEGER,                   -- count: what the system had
            note             TEXT,
            reference_id     TEXT,                      -- grant: the redemption
            replenishment_id TEXT,                      -- grant: the consolidated replenishment it went into
            UNIQUE (kind, document)
        );
        INSERT INTO loyalty_stock_movements_v2(movement_id, reward_id, kind, quantity, document, occurred_at)
            SELECT movement_id, reward_id, kind, quantity, document, occurred_at FROM loyalty_stock_movements;
        DROP TABLE loyalty_stock_movements;
        ALTER TABLE loyalty_stock_movements_v2 RENAME TO loyalty_stock_movements;
        CREATE INDEX loyalty_stock_movements_by_time ON loyalty_stock_movements(occurred_at, movement_id);
        CREATE INDEX loyalty_stock_movements_by_reward ON loyalty_stock_movements(reward_id, occurred_at);
        CREATE INDEX loyalty_stock_grants_open ON loyalty_stock_movements(reward_id)
            WHERE kind = 'grant' AND replenishment_id IS NULL;
        CREATE TABLE loyalty_replenishments (
            replenishment_id TEXT PRIMARY KEY,
            created_at       TEXT NOT NULL,
            lines            TEXT NOT NULL              -- JSON [{reward_id, quantity}]
        );
        CREATE INDEX loyalty_redemptions_requested ON loyalty_redemptions(occurred_at) WHERE status = 'requested';
        """,
    ),
    (
        "loyalty_007_enrollment_requests",
        """
        -- Enrollment requests from the chain's website (agent.loyalty.enrollment_requests).
        CREATE TABLE loyalty_enrollment_requests (
            request_id        TEXT PRIMARY KEY,
            requested_at      TEXT NOT NULL,
            expires_at        TEXT NOT NULL,
            doc_country       TEXT NOT NULL,
            doc_type          TEXT NOT NULL,
            doc_number        TEXT NOT NULL,            -- compact form when valid, as typed otherwise
            first_name        TEXT NOT NULL,
            surname           TEXT NOT NULL,
            phone             TEXT,
            email             TEXT,
            preferred_station TEXT
        );
        CREATE INDEX loyalty_enrollment_requests_document
            ON loyalty_enrollment_requests(doc_country, doc_type, doc_number);
        CREATE INDEX loyalty_enrollment_requests_expiry ON loyalty_enrollment_requests(expires_at);
        """,
    ),
]
