--
-- Errors: PostgreSQL's SQLSTATEs, messages, positions and hints; the session goes on
--
\set VERBOSITY default
SELEC 1;
SELECT 1 +;
SELECT * FORM x;
SELECT no_such_function(1);
SELECT 'x'::int;
SELECT 1 / 0;
SELECT 2147483647 + 1;
SELECT nocol;
SELECT g FROM generate_series(1, 3) g, generate_series(1, 2) h;
SELECT * FROM no_such_view;
SELECT 1 FROM generate_series(1, 3) LIMIT -1;
CREATE TABLE t (a int);
SELECT 'still usable' AS answer;
\set VERBOSITY verbose
SELECT 1 / 0;
\set VERBOSITY default
-- An error in a multi-statement string: the statements before it ran.
SELECT 1 AS first \; SELECT 1 / 0 \; SELECT 3 AS third;
SELECT 'after the batch' AS answer;
