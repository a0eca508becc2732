"""The throwaway PostgreSQL server the replica tests use: real, separate per test, restartable."""

from __future__ import annotations

import psycopg
import pytest

from tests.postgres import PostgresServer, wait_until_up


def test_each_test_gets_an_empty_database_on_a_real_server(
    postgres: PostgresServer, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
        assert version is not None and int(version[0]) >= 120000
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE t (x int)")
    assert postgres.create_database() != database_url


def test_the_server_can_go_away_and_come_back(postgres: PostgresServer, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    postgres.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(database_url, connect_timeout=2)
    postgres.start()
    wait_until_up(database_url)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(7,)]
