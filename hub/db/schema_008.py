"""Migration 008: enrollment requests travel to the stations (issue 16).

A request is announced in the directory deltas once while pending and once more (its id in
``removed_enrollment_requests``) when it stops being pending: ``announced`` records which of the
two the stations last heard. ``document_compact`` is the number in the agents' compact form, so
the ``customer.created`` that fulfils it matches exactly. Stations announce in ``availability``
the optional downlink fields their agent accepts (``features``); ``enrollment_full_sent`` says
whether one that accepts enrollment requests has had every pending one.
"""
SQL = r"""
ALTER TABLE enrollment_requests
    ADD COLUMN document_compact text,
    ADD COLUMN announced text CHECK (announced IN ('pending', 'removed')),
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN customer_id text;
UPDATE enrollment_requests SET document_compact = upper(regexp_replace(document_number, '[^0-9A-Za-z]', '', 'g'));
ALTER TABLE enrollment_requests ALTER COLUMN document_compact SET NOT NULL;
CREATE INDEX enrollment_requests_pending ON enrollment_requests (document_country, document_type, document_compact)
    WHERE status = 'pending';
CREATE INDEX enrollment_requests_created ON enrollment_requests (created_at);

ALTER TABLE stations
    ADD COLUMN features text[] NOT NULL DEFAULT '{}',
    ADD COLUMN enrollment_full_sent boolean NOT NULL DEFAULT false;
"""
