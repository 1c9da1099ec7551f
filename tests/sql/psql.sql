--
-- psql's meta-commands: what works, and clean errors for the catalog-based ones
--
\x on
SELECT 1 AS a, 'two' AS b;
\x off
\echo :SERVER_VERSION_NUM
\d
\l
\dt
\df
\dn
SELECT 'the session is fine' AS answer;
