//! PostgreSQL's procsignal: signals between backends with reasons, and signal barriers.
