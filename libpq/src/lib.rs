//! Server side of the PostgreSQL v3 wire protocol (PostgreSQL's libpq/pqcomm.c, pqformat.c).
