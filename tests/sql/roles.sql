-- Role commands and the views of who may connect.
CREATE ROLE alice LOGIN PASSWORD 'secret' CONNECTION LIMIT 3;
CREATE ROLE alice;
CREATE USER bob VALID UNTIL '2030-01-01 00:00:00+00';
ALTER ROLE bob NOLOGIN;
ALTER ROLE nobody LOGIN;
SELECT rolname, rolsuper, rolcanlogin, rolconnlimit, rolpassword, rolvaliduntil
  FROM pg_roles ORDER BY rolname;
SELECT rolpassword IS NULL AS no_secret FROM pg_roles WHERE rolname = 'alice';
DROP ROLE bob;
DROP ROLE IF EXISTS bob;
DROP ROLE bob;
DROP ROLE alice;
CREATE ROLE;
SELECT line_number, type, database, user_name, address, netmask, auth_method, error
  FROM pg_hba_file_rules ORDER BY line_number;
SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid();
