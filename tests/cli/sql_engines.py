"""Runs pooltrack's generated SQL on other engines, for tests/cli/sql.rs.

Reads a JSON list of cases on standard input, each
  {"name", "store", "batches": bool,
   "queries": {"status": {"duckdb": SQL, "spark": SQL}, "recall": {...}}}
and prints, per case and engine, what the engine computed:
  {name: {engine: {"status": [[person, status, tube], ...],
                   "recall": [[person, tube], ...],
                   "batches": {"collections": [ids], "results": [ids]}},
          "glob_batches": {...}}}
("batches" and "glob_batches" only for a case that asks for them.)

The tables are read with the deltalake package (delta-rs, an implementation of the
Delta protocol written apart from pooltrack): DuckDB queries the datasets it gives;
Spark (local mode, one session for every case) reads the Parquet files that the Delta
log lists as committed (DeltaTable.file_uris()). "glob_batches" is what a reader that
globs the tables' folders instead sees, crashed and retracted batches included.
argv[1] is the comma-separated list of engines to run: duckdb, spark.
"""

import json
import os
import sys

import pyarrow.dataset as ds
from deltalake import DeltaTable

TABLES = ["collections", "results"]


def batches_of(rows):
    return sorted({int(b) for (b,) in rows})


def run_duckdb(case):
    import duckdb

    con = duckdb.connect()
    for t in TABLES:
        con.register(t, DeltaTable(f"{case['store']}/{t}").to_pyarrow_dataset())
    out = {}
    status = con.execute(case["queries"]["status"]["duckdb"]).fetchall()
    out["status"] = [[r[0], r[1], r[2]] for r in status]
    recall = con.execute(case["queries"]["recall"]["duckdb"]).fetchall()
    out["recall"] = [[r[0], r[2]] for r in recall]
    if case.get("batches"):
        out["batches"] = {
            t: batches_of(con.execute(f"SELECT DISTINCT batch FROM {t}").fetchall())
            for t in TABLES
        }
    con.close()
    return out


SPARK = None


def spark_session():
    global SPARK
    if SPARK is None:
        from pyspark.sql import SparkSession

        SPARK = (
            SparkSession.builder.master("local[2]")
            .appName("pooltrack-sql-test")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            # Small tables: one partition a shuffle, no re-planning, and expressions
            # interpreted rather than compiled (Spark's own tests run both ways): the
            # query's plan has a dozen shuffles and as many compiled stages, each a
            # fixed cost that at a few thousand rows is all the time (60 s a run
            # with Spark's defaults, 35 s so).
            .config("spark.sql.shuffle.partitions", "1")
            .config("spark.sql.adaptive.enabled", "false")
            .config("spark.sql.codegen.wholeStage", "false")
            .config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
            .config("spark.driver.memory", "1g")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
        SPARK.sparkContext.setLogLevel("ERROR")
    return SPARK


def run_spark(case):
    spark = spark_session()
    for t in TABLES:
        files = DeltaTable(f"{case['store']}/{t}").file_uris()
        spark.read.parquet(*files).createOrReplaceTempView(t)
    out = {}
    status = spark.sql(case["queries"]["status"]["spark"]).collect()
    out["status"] = [[r[0], r[1], r[2]] for r in status]
    recall = spark.sql(case["queries"]["recall"]["spark"]).collect()
    out["recall"] = [[r[0], r[2]] for r in recall]
    if case.get("batches"):
        out["batches"] = {
            t: batches_of(spark.sql(f"SELECT DISTINCT batch FROM {t}").collect())
            for t in TABLES
        }
    return out


def glob_batches(store):
    out = {}
    for t in TABLES:
        # Every Parquet file under the table's folder; names starting with _ or .
        # (the log, pooltrack's sidecars) are left out, as by any glob reader.
        tab = ds.dataset(f"{store}/{t}", format="parquet").to_table(columns=["batch"])
        out[t] = sorted(set(tab.column("batch").to_pylist()))
    return out


def main():
    engines = [e for e in sys.argv[1].split(",") if e]
    cases = json.load(sys.stdin)
    result = {}
    for case in cases:
        seen = {}
        if case.get("batches"):
            seen["glob_batches"] = glob_batches(case["store"])
        for engine in engines:
            run = {"duckdb": run_duckdb, "spark": run_spark}[engine]
            seen[engine] = run(case)
        result[case["name"]] = seen
    if SPARK is not None:
        SPARK.stop()
    json.dump(result, sys.stdout)
    sys.stdout.flush()
    # Past this point nothing is left to do, and leaving through the interpreter's
    # shutdown can abort ("terminate called without an active exception") when
    # delta-rs or Arrow threads are still alive, which happens here on some tables:
    # the answer is out, so leave at once.
    os._exit(0)


main()
