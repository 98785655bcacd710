"""Migration 009: ``point_movements.account_id`` checked once per statement, not once per row.

The foreign key ran a trigger per inserted movement that looked up and locked its account
(profiled with ``python -m bench hub_ingest``: a third of the COPY of a burst's movements, the
ingest's second most expensive statement). The same rule, set-based: after each statement
that inserts or updates movements, one query locks their accounts as the key did (``FOR KEY
SHARE``: a concurrent delete waits for our commit) and refuses the statement if one is missing;
on the accounts' side, deleting or re-keying an account that has movements is refused, and so is
a ``TRUNCATE`` of accounts that leaves movements behind (``TRUNCATE accounts CASCADE``, which
emptied the movements through the key, is refused now: name both tables). The error is PostgreSQL's
``foreign_key_violation``, as before.
"""
SQL = r"""
ALTER TABLE point_movements DROP CONSTRAINT IF EXISTS point_movements_account_id_fkey;

CREATE FUNCTION point_movements_accounts_exist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM accounts a WHERE a.account_id IN (SELECT account_id FROM new_movements) FOR KEY SHARE OF a;
    IF EXISTS (SELECT 1 FROM new_movements n
               WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = n.account_id)) THEN
        RAISE EXCEPTION 'point_movements.account_id references no account'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'point_movements';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER point_movements_accounts_inserted AFTER INSERT ON point_movements
    REFERENCING NEW TABLE AS new_movements FOR EACH STATEMENT EXECUTE FUNCTION point_movements_accounts_exist();
CREATE TRIGGER point_movements_accounts_updated AFTER UPDATE ON point_movements
    REFERENCING NEW TABLE AS new_movements FOR EACH STATEMENT EXECUTE FUNCTION point_movements_accounts_exist();

CREATE FUNCTION accounts_keep_their_movements() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'DELETE' OR NEW.account_id IS DISTINCT FROM OLD.account_id)
       AND EXISTS (SELECT 1 FROM point_movements m WHERE m.account_id = OLD.account_id) THEN
        RAISE EXCEPTION 'account % still has point movements', OLD.account_id
            USING ERRCODE = 'foreign_key_violation', TABLE = 'accounts';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_keep_their_movements AFTER DELETE OR UPDATE OF account_id ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_keep_their_movements();

CREATE FUNCTION accounts_truncated_with_movements() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM point_movements) THEN
        RAISE EXCEPTION 'accounts truncated while point movements remain'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'accounts';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER accounts_truncated_with_movements AFTER TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_truncated_with_movements();
"""
