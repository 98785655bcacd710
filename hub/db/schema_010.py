"""Migration 010: fewer rows and index entries per sale in the ingest's hot tables.

Measured with ``python -m bench hub_ingest`` and pg_stat_statements (50,000 ``points.earned``):
the projections' three COPYs cost PostgreSQL about as much as storing the events themselves
(movements 674 ms, sale lines 374 ms, sales 295 ms against 1,425 ms for the events).

- **A sale is its earn movement.** ``sales`` held, per ``points.earned``, the movement's own
  account, card, points, time and event again, under a second primary key. The sale's header
  (POS, receipt, attendant, program version, customer, how the customer was identified) now
  lives on the ``earn`` movement, and ``sales`` is a view with the same columns: one row and one
  index entry less per sale. Existing sales are copied onto their movements first.
- **Time-ordered columns get BRIN indexes.** ``occurred_at`` of movements and sale lines only
  serves the monthly close's month ranges, and rows arrive roughly in time order: a block-range
  index answers those ranges with a few hundred bytes per megabyte of table instead of a B-tree
  entry per row (a B-tree insert per row on every sale). ``autosummarize`` keeps new ranges
  summarized; a range not summarized yet is read whole, so an answer is never wrong.
- **Fleet transfers by owner** (``fleet_transfers_owner``): the points a directory snapshot
  announces as expiring are summed only for accounts credited before the cutoff
  (hub.central.close.expiring_at_next_close), a fleet owner among them.
- **The accounts check of movements reads each account once.** The statement trigger of
  migration 009 looked up every movement's account; a burst's 2,500 movements name a few dozen.

On a large existing database the copy onto the movements rewrites the earn movements once, and
the view replaces the table inside the migration's transaction: plan a quiet moment (docs/hub.md).
A sale without its earn movement (no code path writes one; a hand-edited database could hold
it) stops the migration with an error and changes nothing, rather than vanish with the table.
"""
SQL = r"""
-- First, so that the copy below is checked the cheap way.
CREATE OR REPLACE FUNCTION point_movements_accounts_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted text[];
    locked bigint;
BEGIN
    SELECT array_agg(DISTINCT account_id) INTO wanted FROM new_movements;
    -- Locked as the foreign key did (FOR KEY SHARE: a concurrent delete waits for our commit);
    -- an account deleted meanwhile is not returned, so it counts as missing.
    PERFORM 1 FROM accounts a WHERE a.account_id = ANY(wanted) FOR KEY SHARE OF a;
    GET DIAGNOSTICS locked = ROW_COUNT;
    IF locked < coalesce(cardinality(wanted), 0) THEN
        RAISE EXCEPTION 'point_movements.account_id references no account'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'point_movements';
    END IF;
    RETURN NULL;
END $$;

DO $$
DECLARE
    orphans bigint;
BEGIN
    SELECT count(*) INTO orphans FROM sales s
     WHERE NOT EXISTS (SELECT 1 FROM point_movements m WHERE m.kind = 'earn' AND m.reference_id = s.sale_id);
    IF orphans > 0 THEN
        RAISE EXCEPTION 'migración 010: % ventas sin su movimiento de acumulación; no se cambió nada '
                        '(migration 010: % sales without their earn movement; nothing was changed)', orphans, orphans
            USING HINT = 'SELECT * FROM sales s WHERE NOT EXISTS (SELECT 1 FROM point_movements m'
                         ' WHERE m.kind = ''earn'' AND m.reference_id = s.sale_id)';
    END IF;
END $$;
ALTER TABLE point_movements ADD COLUMN pos text, ADD COLUMN receipt_number text, ADD COLUMN attendant_id text,
    ADD COLUMN program_version text, ADD COLUMN customer_id text, ADD COLUMN identified_by text;
-- NULLIF: hubs before a0cdcfc stored an empty attendant as ''; the ingest writes NULL.
UPDATE point_movements m SET pos = s.pos, receipt_number = s.receipt_number, attendant_id = NULLIF(s.attendant_id, ''),
       program_version = s.program_version, customer_id = s.customer_id, identified_by = s.identified_by
  FROM sales s WHERE m.kind = 'earn' AND m.reference_id = s.sale_id;
DROP TABLE sales;
CREATE VIEW sales AS
    SELECT reference_id AS sale_id, station_id, pos, receipt_number, account_id, card_number, attendant_id,
           program_version, points, occurred_at, event_id, customer_id, identified_by
      FROM point_movements WHERE kind = 'earn';

DROP INDEX IF EXISTS point_movements_occurred;
DROP INDEX IF EXISTS sale_lines_occurred;
CREATE INDEX point_movements_occurred ON point_movements USING brin (occurred_at) WITH (autosummarize = on);
CREATE INDEX sale_lines_occurred ON sale_lines USING brin (occurred_at) WITH (autosummarize = on);
-- Written once a month by the close; read for every account the directory publishes.
CREATE INDEX fleet_transfers_owner ON fleet_transfers (owner_account_id);
"""
