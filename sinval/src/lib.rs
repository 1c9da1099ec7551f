//! PostgreSQL's sinvaladt: the shared invalidation message ring.
