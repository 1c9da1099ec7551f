//! PostgreSQL's shm_toc: a table of contents inside a shared memory segment.
