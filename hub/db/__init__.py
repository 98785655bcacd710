"""PostgreSQL: connections, migrations, and the SQL of the system of record."""
