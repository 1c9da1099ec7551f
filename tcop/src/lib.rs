//! The backend main loop and its small built-in command set (PostgreSQL's tcop/postgres.c).
