//! PostgreSQL's dsm: dynamic shared memory segments with handles, reference counts, pinning and crash cleanup.
