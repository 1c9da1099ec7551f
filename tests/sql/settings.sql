--
-- SET, SHOW, RESET and transaction blocks
--
SHOW work_mem;
SET work_mem = '8MB';
SHOW work_mem;
SELECT current_setting('work_mem'), current_setting('no_such', true) IS NULL AS missing;
SELECT set_config('work_mem', '16MB', false);
SHOW work_mem;
RESET work_mem;
SHOW work_mem;
SET search_path = a, "B c";
SHOW search_path;
RESET ALL;
SHOW search_path;
SET no_such = 1;
SHOW no_such;
BEGIN;
SET LOCAL work_mem = '32MB';
SHOW work_mem;
COMMIT;
SHOW work_mem;
BEGIN;
SET work_mem = '2MB';
SELECT 1 / 0;
SHOW work_mem;
ROLLBACK;
SHOW work_mem;
SET LOCAL work_mem = '3MB';
COMMIT;
SET TIME ZONE 'UTC';
SHOW TimeZone;
SELECT '2026-12-01 23:15:01.213456+00'::timestamptz AS ts;
SET TimeZone = 'America/New_York';
SELECT '2026-12-01 23:15:01.213456+00'::timestamptz AS ts;
SELECT set_config('TimeZone', 'Asia/Tokyo', false), '2026-07-01 00:00:00+00'::timestamptz AS ts;
RESET TimeZone;
SELECT '2026-12-01 12:00:00+00'::timestamptz + '1 day 00:05:00'::interval AS later;
