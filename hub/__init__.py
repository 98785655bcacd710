"""Head office hub: ingest workers from the stations' MQTT contract into PostgreSQL (docs/hub.md)."""
