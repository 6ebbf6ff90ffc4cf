"""The fault runner never aims at the shared servers, and judges a run by its answers and the books."""

import pytest

from bench.faults import Config


@pytest.mark.parametrize(("pg_port", "redis_port"), [(5432, 6399), (5499, 6379)])
def test_it_refuses_the_shared_postgresql_and_redis(pg_port, redis_port):
    with pytest.raises(SystemExit, match="refusing to run faults on a shared server"):
        Config(pg_port=pg_port, redis_port=redis_port).check()


def test_its_own_ports_are_fine():
    Config(pg_port=5499, redis_port=6399).check()
