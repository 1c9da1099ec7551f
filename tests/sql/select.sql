--
-- SELECT over expressions, generate_series and aggregates
--
SELECT 1;
SELECT 1 + 1 AS two, 7 / 2 AS int_div, 7 % 3 AS modulo, -2 ^ 2 AS power;
SELECT 1.5 + 2.25 AS numeric_sum, 10::numeric / 3 AS numeric_div, 0.1::float8 + 0.2 AS float_sum;
SELECT 'foo' || 'bar' AS cat, upper('abc'), length('héllo'), substr('abcdef', 2, 3);
SELECT true AND NULL AS t_and_null, false AND NULL AS f_and_null, true OR NULL AS t_or_null, NOT NULL::bool AS not_null;
SELECT NULL IS NULL AS a, 1 IS NOT NULL AS b, NULL = NULL AS c;
SELECT 'abc' LIKE 'a%' AS like1, 'ABC' ILIKE 'a_c' AS ilike1, 3 BETWEEN 1 AND 5 AS btw, 4 IN (1, 2, 4) AS in_list;
SELECT CASE WHEN 1 > 2 THEN 'no' WHEN 2 > 1 THEN 'yes' ELSE 'never' END AS case_expr;
SELECT coalesce(NULL, NULL, 3) AS coalesce, nullif(5, 5) AS nullif_same, nullif(5, 6) AS nullif_diff;
SELECT '42'::int + 1 AS cast_int, CAST('3.50' AS numeric) AS cast_numeric, 1::bool AS int_to_bool, '1 day 2 hours'::interval AS iv;
SELECT 9223372036854775807 AS max_int8, 9223372036854775808 AS numeric_literal, 2147483648 AS int8_literal;
SELECT g FROM generate_series(1, 5) g;
SELECT g, g * g AS square FROM generate_series(1, 10) g WHERE g % 2 = 0 ORDER BY g DESC;
SELECT g FROM generate_series(1, 100) g ORDER BY g LIMIT 3 OFFSET 10;
SELECT count(*), sum(g), min(g), max(g), avg(g) FROM generate_series(1, 100) g;
SELECT g % 3 AS k, count(*), string_agg(g::text, ',' ORDER BY g) FROM generate_series(1, 10) g GROUP BY g % 3 ORDER BY 1;
SELECT g % 4 AS k, count(*) FROM generate_series(1, 20) g GROUP BY 1 HAVING count(*) > 4 ORDER BY k;
SELECT DISTINCT g % 3 AS r FROM generate_series(1, 10) g ORDER BY r;
SELECT x FROM (VALUES (1)) v(x);
SELECT count(*) FROM generate_series(1, 1000000);
SELECT 1 AS a, 'two' AS b, NULL AS c, 4.0 AS d;
