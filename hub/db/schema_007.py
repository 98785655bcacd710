"""Migration 007: the ingest's hot tables stop re-checking references the ingest itself makes.

``events.station_id``, ``point_movements.event_id`` and ``sales.event_id`` are written only by
the ingest transaction (hub.ingest, hub.earned, hub.projections), in the same transaction that
inserts and locks the station row and that stores the event the row is projected from; events
are never deleted. Each foreign key cost a per-row trigger that locks the referenced row
(profiled with ``python -m bench hub_ingest``: about a quarter of a burst's ingest time, as much
as the COPY of the events themselves). Checks that guard rows other writers touch stay
(``point_movements.account_id``, ``customer_history.event_id``, every table of hub.central).

``sale_lines_station_group`` served no query: ``points_by_station_group`` sums the whole table
and the monthly close reads sale lines by ``occurred_at`` (``sale_lines_occurred``).
"""
SQL = r"""
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_station_id_fkey;
ALTER TABLE point_movements DROP CONSTRAINT IF EXISTS point_movements_event_id_fkey;
ALTER TABLE sales DROP CONSTRAINT IF EXISTS sales_event_id_fkey;
DROP INDEX IF EXISTS sale_lines_station_group;
"""
