"""Database access: the connection pool, the embedded PostgreSQL and the migrations."""
