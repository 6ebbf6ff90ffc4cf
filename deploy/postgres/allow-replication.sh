#!/bin/sh
# docker-entrypoint-initdb.d: let the streaming replica (db-replica) connect for replication.
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
