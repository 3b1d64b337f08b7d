#!/usr/bin/env python3
"""The DuckDB side of pooltrack's reference job (issue 5), kept here so anyone can rerun it.

Reads a generated city's collections.csv and results.csv with explicit column types,
joins them, and writes the recall list and the counts by status, in memory. It
implements the pooled stage of pooltrack's status rules: members of a positive or
inconclusive pool are recalled, a positive single tube is positive, an invalid tube or
inconclusive single tube is resample, a tube without result is pending.

    python3 benches/duckdb_reference.py CITY_DIR [OUT_DIR]

Prints one JSON line: {"seconds": ..., "peak_mib": ..., "recall": N, "counts": {...}}.
Needs the `duckdb` Python package (pip install duckdb pytz).
"""

import json
import os
import resource
import sys
import time

import duckdb

SQL = """
CREATE TEMP TABLE c AS SELECT * FROM read_csv('{city}/collections.csv', header = true,
    columns = {{'tube': 'VARCHAR', 'person': 'VARCHAR', 'mode': 'VARCHAR', 'capacity': 'UTINYINT',
                'collected_at': 'TIMESTAMP', 'site': 'VARCHAR'}});
CREATE TEMP TABLE r AS SELECT * FROM read_csv('{city}/results.csv', header = true,
    columns = {{'tube': 'VARCHAR', 'result': 'VARCHAR', 'ct_orf1ab': 'FLOAT', 'ct_n': 'FLOAT',
                'reported_at': 'TIMESTAMP', 'lab': 'VARCHAR', 'plate': 'VARCHAR', 'well': 'VARCHAR'}});
CREATE TEMP TABLE outcome AS
    SELECT tube, ct_orf1ab, ct_n,
        coalesce(nullif(lower(result), ''),
            CASE WHEN ct_orf1ab < 40 AND ct_n < 40 THEN 'positive'
                 WHEN ct_orf1ab < 40 OR ct_n < 40 THEN 'inconclusive'
                 ELSE 'negative' END) AS outcome
    FROM (SELECT *, row_number() OVER (PARTITION BY tube ORDER BY reported_at DESC) AS k FROM r)
    WHERE k = 1;
CREATE TEMP TABLE status AS
    SELECT c.person, c.tube, c.site, c.collected_at, o.ct_orf1ab, o.ct_n,
        CASE WHEN c.mode = 'single' AND o.outcome = 'positive' THEN 'positive'
             WHEN c.mode = 'pool' AND o.outcome IN ('positive', 'inconclusive') THEN 'recall'
             WHEN o.outcome = 'invalid' OR (c.mode = 'single' AND o.outcome = 'inconclusive') THEN 'resample'
             WHEN o.outcome IS NULL THEN 'pending'
             ELSE 'negative' END AS status
    FROM c LEFT JOIN outcome o USING (tube);
"""


def main() -> None:
    city = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else None
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count()}")
    start = time.perf_counter()
    con.execute(SQL.format(city=city))
    recall = con.sql(
        "SELECT person, tube, site, collected_at, ct_orf1ab, ct_n FROM status "
        "WHERE status = 'recall' ORDER BY least(ct_orf1ab, ct_n), tube, person"
    )
    if out:
        recall.write_csv(os.path.join(out, "duckdb_recall.csv"))
        n_recall = con.sql(f"SELECT count(*) FROM read_csv('{out}/duckdb_recall.csv')").fetchall()[0][0]
    else:
        n_recall = len(recall.fetchall())
    counts = dict(con.sql("SELECT status, count(*) FROM status GROUP BY status").fetchall())
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": round(seconds, 3), "peak_mib": round(peak_kib / 1024, 1),
                      "recall": n_recall, "counts": counts}))


if __name__ == "__main__":
    main()
