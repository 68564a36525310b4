"""veeam-etl: Veeam Backup Enterprise Manager replication history into a SQL warehouse.

Flow: client (HTTP) → crawl (what to ask) → reader (pages → rows, in reader processes for long
queries) → transform (XML → rows) → load (upsert), joined by pipeline.run(); cli wires flags to it. The simulator is a separate fake EM used for demo and tests.
"""
