#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

The seeds are what real clients and real configuration files look like, so that the fuzzer
starts deep inside each parser instead of rediscovering the protocol: psql's and a 3.2 client's
startup packets, SSL/GSS negotiation, cancel requests of both key lengths, simple and extended
query message streams as psql and pgbench send them, and postgresql.conf trees with includes,
units and quoting. Run it from anywhere; it rewrites the corpus folders. The output is
deterministic and committed.
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- startup packets -------------------------------------------------------------------------

def v(major, minor):
    return (major << 16) | minor


CANCEL, SSL, GSS = v(1234, 5678), v(1234, 5679), v(1234, 5680)


def packet(code, payload=b""):
    return struct.pack("!iI", 8 + len(payload), code) + payload


def params(*pairs):
    return b"".join(n.encode() + b"\0" + val.encode() + b"\0" for n, val in pairs) + b"\0"


PSQL = params(("user", "postgres"), ("database", "postgres"),
              ("application_name", "psql"), ("client_encoding", "UTF8"))

startup = {
    "psql_v30": packet(v(3, 0), PSQL),
    "libpq18_v32": packet(v(3, 2), params(("user", "alice"), ("database", "app"),
                                          ("options", "-c work_mem=4MB -c search_path=s1"),
                                          ("_pq_.test_option", "1"),
                                          ("DateStyle", "ISO, MDY"))),
    "ssl_then_startup": packet(SSL) + packet(v(3, 0), PSQL),
    "gss_ssl_startup": packet(GSS) + packet(SSL) + packet(v(3, 2), PSQL),
    "ssl_twice": packet(SSL) + packet(SSL),
    "cancel_v30": packet(CANCEL, struct.pack("!i", 4242) + b"\x01\x02\x03\x04"),
    "cancel_v32": packet(CANCEL, struct.pack("!i", 4242) + bytes(range(32))),
    "cancel_256": packet(CANCEL, struct.pack("!i", 7) + b"k" * 256),
    "cancel_257": packet(CANCEL, struct.pack("!i", 7) + b"k" * 257),
    "cancel_empty_key": packet(CANCEL, struct.pack("!i", 7)),
    "replication_database": packet(v(3, 0), params(("user", "rep"), ("replication", "database"))),
    "replication_on": packet(v(3, 0), params(("user", "rep"), ("replication", "on"))),
    "replication_bad": packet(v(3, 0), params(("user", "rep"), ("replication", "maybe"))),
    "newer_minor": packet(v(3, 9), params(("user", "u"), ("_pq_.a", "x"), ("_pq_.b", "y"))),
    "long_names": packet(v(3, 0), params(("user", "u" * 70), ("database", "é" * 40))),
    "protocol_2": packet(v(2, 0), PSQL),
    "no_user": packet(v(3, 0), params(("database", "postgres"))),
    "no_terminator": packet(v(3, 0), b"user\0postgres\0"),
    "bad_length": struct.pack("!iI", 4, v(3, 0)),
}

# --- frontend message streams ----------------------------------------------------------------


def msg(ty, body=b""):
    return ty.encode() + struct.pack("!i", 4 + len(body)) + body


def cstr(s):
    return s.encode() + b"\0"


def parse(name, query, oids=()):
    return msg("P", cstr(name) + cstr(query) + struct.pack("!h", len(oids)) +
               b"".join(struct.pack("!I", o) for o in oids))


def bind(portal, stmt, fmts=(), values=(), rfmts=()):
    body = cstr(portal) + cstr(stmt) + struct.pack("!h", len(fmts))
    body += b"".join(struct.pack("!h", f) for f in fmts)
    body += struct.pack("!h", len(values))
    for val in values:
        body += struct.pack("!i", -1) if val is None else struct.pack("!i", len(val)) + val
    body += struct.pack("!h", len(rfmts)) + b"".join(struct.pack("!h", f) for f in rfmts)
    return msg("B", body)


def describe(kind, name):
    return msg("D", kind.encode() + cstr(name))


def close(kind, name):
    return msg("C", kind.encode() + cstr(name))


def execute(portal, rows=0):
    return msg("E", cstr(portal) + struct.pack("!i", rows))


SYNC, FLUSH, TERMINATE = msg("S"), msg("H"), msg("X")

messages = {
    "simple_query": msg("Q", cstr("SELECT 1;")) + msg("Q", cstr("")) + TERMINATE,
    "psql_session": msg("Q", cstr("SELECT pg_backend_pid()")) +
    msg("Q", cstr("BEGIN; SELECT 'x''y'; COMMIT")) + TERMINATE,
    "extended_unnamed": parse("", "SELECT $1::int", (23,)) +
    bind("", "", (0,), (b"42",), (1,)) + describe("P", "") + execute("", 0) + SYNC,
    "pgbench_prepared": parse("P0_1", "SELECT abalance FROM pgbench_accounts WHERE aid = $1;") +
    describe("S", "P0_1") + SYNC + bind("", "P0_1", (), (b"1234",)) + execute("") + SYNC +
    TERMINATE,
    "bind_null_binary": parse("s", "INSERT INTO t VALUES ($1, $2, $3)", (23, 17, 0)) +
    bind("p", "s", (1, 1, 0), (b"\x00\x00\x00\x07", None, "héllo".encode()), (0, 1)) +
    execute("p", 10) + close("P", "p") + close("S", "s") + FLUSH + SYNC,
    "copy_and_call": msg("d", b"1\tone\n") + msg("c") + msg("f", cstr("client gave up")) +
    msg("F", struct.pack("!I", 1598) + b"\0\0\0\0\0\0\0\0") + SYNC,
    "bad_type": msg("Q", cstr("SELECT 1")) + b"Z\0\0\0\4",
    "bad_length": SYNC + b"S\0\0\0\3",
    # A Close declaring more than PQ_SMALL_MESSAGE_LIMIT (the body need not follow).
    "small_limit": b"C" + struct.pack("!i", 10_001) + b"Sname\0",
    "truncated": parse("", "SELECT 1") + b"B\0\0\0\x20\0\0",
    "bad_bodies": describe("X", "") + execute("p")[:-2] + bind("", "", (0,), (), ()) +
    msg("Q", b"no nul") + msg("P", cstr("") + cstr("q") + struct.pack("!h", -1)),
}

# --- postgresql.conf trees (see the postgresql_conf target: "=== path" starts a file) ----------

conf = {
    "initdb_like": """# server configuration, in PostgreSQL's format
listen_addresses = 'localhost'\t\t# what IP address(es) to listen on
port = 5432\t\t\t\t# (change requires restart)
max_connections = 100
unix_socket_directories = '/tmp'
#superuser_reserved_connections = 3
shared_memory_type = mmap
dynamic_shared_memory_type = posix
huge_pages = try
log_min_messages = warning
restart_after_crash = on
""",
    "units": """authentication_timeout = 1min
checkpoint_timeout = 300s
bgwriter_delay = 200ms
wal_writer_delay = '0.2s'
autovacuum_naptime = 1h
huge_page_size = 2MB
min_dynamic_shared_memory = 1GB
max_worker_processes = 0x10
unix_socket_permissions = 0777
max_parallel_workers = 7.6
checkpoint_timeout = 1d
bgwriter_delay = 10000us
huge_page_size = 1TB
authentication_timeout = 5 min
""",
    "quotes": """listen_addresses = '*'
shared_preload_libraries = 'a, b,\\'c\\''
unix_socket_directories = 'it''s here, /tmp'
log_min_messages='DEBUG1'
listen_addresses '127.0.0.1'   # no equals sign
shared_preload_libraries = 'tab\\there\\nnewline\\\\back'
data_directory = ''
""",
    "booleans": """autovacuum = off
restart_after_crash = true
send_abort_for_crash = yes
send_abort_for_kill = 0
exec_backend = of
autovacuum = t
restart_after_crash = NO
""",
    "includes": """include 'base.conf'
include_if_exists 'missing.conf'
include_if_exists 'local.conf'
include_dir 'conf.d'
max_connections = 20
=== base.conf
port = 5433
max_connections = 10
=== local.conf
# local overrides
log_min_messages = info
=== conf.d/01-memory.conf
min_dynamic_shared_memory = 64MB
=== conf.d/02-workers.conf
max_worker_processes = 4
include '../nested/deep.conf'
=== conf.d/.hidden.conf
port = 1
=== conf.d/readme.txt
not a conf file
=== nested/deep.conf
autovacuum_max_workers = 2
""",
    "include_cycle": """include 'a.conf'
=== a.conf
include 'b.conf'
=== b.conf
INCLUDE 'a.conf'
""",
    "include_missing": """port = 5432
include 'nowhere.conf'
""",
    "errors": """max_connections = 10
# a comment
listen_addresses = 'unterminated
""",
    "bad_values": """port = 99999
max_connections = many
huge_pages = sometimes
checkpoint_timeout = 5 parsecs
autovacuum = maybe
server_version = 99
no_such_setting = 1
""",
    "syntax": """port = 5432 extra
= 5
9lives = 1
my.custom_setting = 'x'
""",
}


# --- SASL exchanges (first byte: bit 0 mock secret, bit 1 channel binding data) ------------

def sasl_initial(mech, data):
    if data is None:
        return mech.encode() + b"\0" + struct.pack(">i", -1)
    return mech.encode() + b"\0" + struct.pack(">i", len(data)) + data


sasl = {
    "client_first_final": b"\x00" + sasl_initial("SCRAM-SHA-256", b"n,,n=,r=abcdefg")
    + b"\xffc=biws,r=abcdefg,p=AAAA",
    "no_initial_data": b"\x01" + sasl_initial("SCRAM-SHA-256", None) + b"\xffn,,n=,r=abc",
    "plus": b"\x02" + sasl_initial("SCRAM-SHA-256-PLUS", b"p=tls-server-end-point,,n=,r=abcd")
    + b"\xffc=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=abcd,p=AAAA",
}

hba = {
    "initdb": """# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             all                                     trust
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 md5
hostssl db1,"db 2"      +admins,@users  10.0.0.0 255.0.0.0      password clientcert=verify-full
local   all             all                                     peer map=m
host all \\
  all samenet reject
m alice bob
""",
}


def main():
    for t in ("startup_packet", "frontend_messages", "postgresql_conf", "sasl_exchange",
              "hba_conf"):
        shutil.rmtree(os.path.join(CORPUS, t), ignore_errors=True)
    for name, data in startup.items():
        write("startup_packet", name, data)
    for name, data in messages.items():
        write("frontend_messages", name, data)
    for name, data in conf.items():
        write("postgresql_conf", name + ".conf", data)
    for name, data in sasl.items():
        write("sasl_exchange", name, data)
    for name, data in hba.items():
        write("hba_conf", name, data)
    total = len(startup) + len(messages) + len(conf) + len(sasl) + len(hba)
    print(f"wrote {total} seeds under {os.path.normpath(CORPUS)}")


if __name__ == "__main__":
    main()
