//! Every CQL statement the adapter sends, as plain functions returning text, so the exact
//! statements are unit-tested without a server (no CQL server runs where this crate is built).
//!
//! Identifiers are always double-quoted: dataset names are case-sensitive (`PURCHASES_BATCH` is
//! not `purchases_batch`), and a quoted name may start with `_`. Data statements bind every value
//! (`?`), partition key included, so the driver's token-aware routing sends each one to a replica.
//! Schema statements (`CREATE`/`DROP`) carry no values and are sent unprepared: CQL cannot bind
//! identifiers or table options.

use chronon_core::DatasetKind;

use crate::layout::DATASETS_TABLE;

/// Longest TTL given to CQL (`default_time_to_live` and `USING TTL`): 10 years. CQL's own
/// maximum is 20 years, but Cassandra before 5.0 rejects cells whose expiry lies beyond
/// 2038-01-19 (`cassandra.expiration_date_overflow_policy=REJECT`); a longer dataset TTL is
/// enforced by read filtering alone.
pub const MAX_NATIVE_TTL_SECS: i64 = 10 * 365 * 24 * 3600;

/// How a keyspace is replicated (CQL's `replication` map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// `SimpleStrategy` with one replication factor (single-datacenter clusters, tests).
    Simple {
        /// Copies of each partition.
        replication_factor: u32,
    },
    /// `NetworkTopologyStrategy` with the same factor in every datacenter (the `replication_factor`
    /// shorthand of Cassandra 4.0+ and ScyllaDB). The default, with factor 1.
    NetworkTopology {
        /// Copies of each partition in every datacenter.
        replication_factor: u32,
    },
    /// `NetworkTopologyStrategy` with a factor per named datacenter.
    Datacenters(Vec<(String, u32)>),
}

impl Default for Replication {
    fn default() -> Self {
        Replication::NetworkTopology {
            replication_factor: 1,
        }
    }
}

impl Replication {
    /// The CQL map literal, e.g. `{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}`.
    pub fn to_cql(&self) -> String {
        match self {
            Replication::Simple { replication_factor } => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {replication_factor}}}")
            }
            Replication::NetworkTopology { replication_factor } => format!(
                "{{'class': 'NetworkTopologyStrategy', 'replication_factor': {replication_factor}}}"
            ),
            Replication::Datacenters(dcs) => {
                let mut out = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, rf) in dcs {
                    out.push_str(&format!(", {}: {rf}", string_literal(dc)));
                }
                out.push('}');
                out
            }
        }
    }
}

/// A double-quoted CQL identifier (embedded `"` doubled, as CQL escapes them).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A single-quoted CQL string literal (embedded `'` doubled).
pub fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `"keyspace"."table"`.
pub fn qualified(keyspace: &str, table: &str) -> String {
    format!("{}.{}", ident(keyspace), ident(table))
}

/// The keyspace, created once with the configured replication.
pub fn create_keyspace(keyspace: &str, replication: &Replication) -> String {
    format!(
        "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {} AND durable_writes = true",
        ident(keyspace),
        replication.to_cql()
    )
}

/// The metadata table: one row per dataset, keyed by its physical table name, holding the
/// dataset's own name (the long-name mapping), its kind and its TTL in milliseconds.
pub fn create_datasets_table(keyspace: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (physical text PRIMARY KEY, dataset text, kind text, ttl_ms bigint)",
        qualified(keyspace, DATASETS_TABLE)
    )
}

/// Reads one dataset's metadata row. Binds `physical text`.
pub fn select_dataset(keyspace: &str) -> String {
    format!(
        "SELECT dataset, kind, ttl_ms FROM {} WHERE physical = ?",
        qualified(keyspace, DATASETS_TABLE)
    )
}

/// Writes one dataset's metadata row. Binds `physical text, dataset text, kind text, ttl_ms bigint`
/// (`ttl_ms` null without TTL).
pub fn insert_dataset(keyspace: &str) -> String {
    format!(
        "INSERT INTO {} (physical, dataset, kind, ttl_ms) VALUES (?, ?, ?, ?)",
        qualified(keyspace, DATASETS_TABLE)
    )
}

/// Removes one dataset's metadata row. Binds `physical text`.
pub fn delete_dataset(keyspace: &str) -> String {
    format!(
        "DELETE FROM {} WHERE physical = ?",
        qualified(keyspace, DATASETS_TABLE)
    )
}

/// The column kinds of a table, to check that an existing table has the shape of its kind.
/// Binds `keyspace_name text, table_name text`; `ts` is `clustering` only in a time series.
pub fn select_table_columns() -> &'static str {
    "SELECT column_name, kind FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?"
}

/// `default_time_to_live` for a dataset TTL in milliseconds: whole seconds rounded up, 0 (none)
/// without TTL or when it is longer than [`MAX_NATIVE_TTL_SECS`].
pub fn default_ttl_secs(ttl_ms: Option<i64>) -> i64 {
    match ttl_ms {
        None => 0,
        Some(ms) if ms <= 0 => 1,
        Some(ms) => {
            let secs = ms / 1000 + i64::from(ms % 1000 != 0);
            if secs > MAX_NATIVE_TTL_SECS {
                0
            } else {
                secs
            }
        }
    }
}

/// The `USING TTL` of one write: the seconds left until `ts + ttl` (rounded up, at least 1 so an
/// already-expired put still replaces the old value and then disappears), or 0 (no expiry) when
/// the TTL is longer than [`MAX_NATIVE_TTL_SECS`]. Counting from the value's own timestamp, not
/// from the write, keeps physical expiry in step with the read filter for values stamped in
/// the future too.
pub fn write_ttl_secs(ttl_ms: i64, ts: i64, now_ms: i64) -> i32 {
    if default_ttl_secs(Some(ttl_ms)) == 0 {
        return 0;
    }
    let left_ms = ts.saturating_add(ttl_ms).saturating_sub(now_ms);
    let secs = left_ms / 1000 + i64::from(left_ms % 1000 > 0);
    // Bounded by MAX_NATIVE_TTL_SECS (< i32::MAX), so the cast is exact.
    secs.clamp(1, MAX_NATIVE_TTL_SECS) as i32
}

/// One dataset's table: `(key blob, ts bigint, value blob)`, `PRIMARY KEY (key)` for a snapshot,
/// `PRIMARY KEY ((key), ts)` newest first for a time series.
pub fn create_table(keyspace: &str, table: &str, kind: DatasetKind, ttl_ms: Option<i64>) -> String {
    let ttl = default_ttl_secs(ttl_ms);
    let name = qualified(keyspace, table);
    match kind {
        DatasetKind::Snapshot => format!(
            "CREATE TABLE IF NOT EXISTS {name} (key blob, ts bigint, value blob, PRIMARY KEY (key)) \
             WITH default_time_to_live = {ttl}"
        ),
        DatasetKind::TimeSeries => format!(
            "CREATE TABLE IF NOT EXISTS {name} (key blob, ts bigint, value blob, PRIMARY KEY ((key), ts)) \
             WITH CLUSTERING ORDER BY (ts DESC) AND default_time_to_live = {ttl}"
        ),
    }
}

/// Removes one dataset's table and its data.
pub fn drop_table(keyspace: &str, table: &str) -> String {
    format!("DROP TABLE IF EXISTS {}", qualified(keyspace, table))
}

/// The data statements of one dataset, prepared once per client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetStatements {
    /// Writes one version. Binds `key blob, ts bigint, value blob` and, with TTL, `ttl int`.
    pub insert: String,
    /// The newest version of a key (a time series is clustered newest first; a snapshot has one
    /// row). Binds `key blob`; returns `ts, value`.
    pub latest: String,
    /// Every version of a key in `[lo, hi]`, newest first. Binds `key blob, lo bigint, hi bigint`;
    /// returns `ts, value`. `None` for a snapshot, whose one value is read with `latest` and
    /// filtered (a regular column cannot be restricted without `ALLOW FILTERING`).
    pub range: Option<String>,
    /// Every key with its newest version, paged. Binds nothing; returns `key, ts, value`.
    pub list: String,
}

/// The data statements for a dataset of `kind` stored in `keyspace.table`.
pub fn dataset_statements(
    keyspace: &str,
    table: &str,
    kind: DatasetKind,
    with_ttl: bool,
) -> DatasetStatements {
    let name = qualified(keyspace, table);
    let insert = if with_ttl {
        format!("INSERT INTO {name} (key, ts, value) VALUES (?, ?, ?) USING TTL ?")
    } else {
        format!("INSERT INTO {name} (key, ts, value) VALUES (?, ?, ?)")
    };
    let latest = format!("SELECT ts, value FROM {name} WHERE key = ? LIMIT 1");
    match kind {
        DatasetKind::Snapshot => DatasetStatements {
            insert,
            latest,
            range: None,
            list: format!("SELECT key, ts, value FROM {name}"),
        },
        DatasetKind::TimeSeries => DatasetStatements {
            insert,
            latest,
            range: Some(format!(
                "SELECT ts, value FROM {name} WHERE key = ? AND ts >= ? AND ts <= ?"
            )),
            list: format!("SELECT key, ts, value FROM {name} PER PARTITION LIMIT 1"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_escaped() {
        assert_eq!(ident("PURCHASES_BATCH"), "\"PURCHASES_BATCH\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(string_literal("dc'1"), "'dc''1'");
        assert_eq!(qualified("chronon", "_x"), "\"chronon\".\"_x\"");
    }

    #[test]
    fn keyspace_statement() {
        assert_eq!(
            create_keyspace("chronon", &Replication::default()),
            "CREATE KEYSPACE IF NOT EXISTS \"chronon\" WITH replication = \
             {'class': 'NetworkTopologyStrategy', 'replication_factor': 1} AND durable_writes = true"
        );
        assert_eq!(
            create_keyspace(
                "ks",
                &Replication::Simple {
                    replication_factor: 3
                }
            ),
            "CREATE KEYSPACE IF NOT EXISTS \"ks\" WITH replication = \
             {'class': 'SimpleStrategy', 'replication_factor': 3} AND durable_writes = true"
        );
        let dcs = Replication::Datacenters(vec![("dc1".into(), 3), ("eu'west".into(), 2)]);
        assert_eq!(
            dcs.to_cql(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'eu''west': 2}"
        );
    }

    #[test]
    fn metadata_statements() {
        assert_eq!(
            create_datasets_table("chronon"),
            "CREATE TABLE IF NOT EXISTS \"chronon\".\"datasets\" \
             (physical text PRIMARY KEY, dataset text, kind text, ttl_ms bigint)"
        );
        assert_eq!(
            select_dataset("chronon"),
            "SELECT dataset, kind, ttl_ms FROM \"chronon\".\"datasets\" WHERE physical = ?"
        );
        assert_eq!(
            insert_dataset("chronon"),
            "INSERT INTO \"chronon\".\"datasets\" (physical, dataset, kind, ttl_ms) VALUES (?, ?, ?, ?)"
        );
        assert_eq!(
            delete_dataset("chronon"),
            "DELETE FROM \"chronon\".\"datasets\" WHERE physical = ?"
        );
        assert_eq!(
            select_table_columns(),
            "SELECT column_name, kind FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?"
        );
    }

    #[test]
    fn snapshot_table_and_statements() {
        assert_eq!(
            create_table("chronon", "PURCHASES_BATCH", DatasetKind::Snapshot, None),
            "CREATE TABLE IF NOT EXISTS \"chronon\".\"PURCHASES_BATCH\" \
             (key blob, ts bigint, value blob, PRIMARY KEY (key)) WITH default_time_to_live = 0"
        );
        let s = dataset_statements("chronon", "PURCHASES_BATCH", DatasetKind::Snapshot, false);
        assert_eq!(
            s.insert,
            "INSERT INTO \"chronon\".\"PURCHASES_BATCH\" (key, ts, value) VALUES (?, ?, ?)"
        );
        assert_eq!(
            s.latest,
            "SELECT ts, value FROM \"chronon\".\"PURCHASES_BATCH\" WHERE key = ? LIMIT 1"
        );
        assert_eq!(s.range, None);
        assert_eq!(
            s.list,
            "SELECT key, ts, value FROM \"chronon\".\"PURCHASES_BATCH\""
        );
    }

    #[test]
    fn time_series_table_and_statements() {
        assert_eq!(
            create_table(
                "chronon",
                "P_STREAMING",
                DatasetKind::TimeSeries,
                Some(3_600_000)
            ),
            "CREATE TABLE IF NOT EXISTS \"chronon\".\"P_STREAMING\" \
             (key blob, ts bigint, value blob, PRIMARY KEY ((key), ts)) \
             WITH CLUSTERING ORDER BY (ts DESC) AND default_time_to_live = 3600"
        );
        let s = dataset_statements("chronon", "P_STREAMING", DatasetKind::TimeSeries, true);
        assert_eq!(
            s.insert,
            "INSERT INTO \"chronon\".\"P_STREAMING\" (key, ts, value) VALUES (?, ?, ?) USING TTL ?"
        );
        assert_eq!(
            s.latest,
            "SELECT ts, value FROM \"chronon\".\"P_STREAMING\" WHERE key = ? LIMIT 1"
        );
        assert_eq!(
            s.range.as_deref(),
            Some("SELECT ts, value FROM \"chronon\".\"P_STREAMING\" WHERE key = ? AND ts >= ? AND ts <= ?")
        );
        assert_eq!(
            s.list,
            "SELECT key, ts, value FROM \"chronon\".\"P_STREAMING\" PER PARTITION LIMIT 1"
        );
    }

    #[test]
    fn drop_statement() {
        assert_eq!(
            drop_table("chronon", "t"),
            "DROP TABLE IF EXISTS \"chronon\".\"t\""
        );
    }

    #[test]
    fn ttl_seconds() {
        assert_eq!(default_ttl_secs(None), 0);
        assert_eq!(default_ttl_secs(Some(3_600_000)), 3600);
        assert_eq!(
            default_ttl_secs(Some(1)),
            1,
            "rounded up, never 0 (which means none)"
        );
        assert_eq!(default_ttl_secs(Some(1_500)), 2);
        assert_eq!(default_ttl_secs(Some(0)), 1);
        assert_eq!(
            default_ttl_secs(Some(MAX_NATIVE_TTL_SECS * 1000)),
            MAX_NATIVE_TTL_SECS
        );
        assert_eq!(
            default_ttl_secs(Some(MAX_NATIVE_TTL_SECS * 1000 + 1)),
            0,
            "too long: reads filter"
        );
        assert_eq!(default_ttl_secs(Some(i64::MAX)), 0);
    }

    #[test]
    fn write_ttl_counts_from_the_value_timestamp() {
        let now = 1_700_000_000_000;
        let hour = 3_600_000;
        assert_eq!(write_ttl_secs(hour, now, now), 3600);
        assert_eq!(write_ttl_secs(hour, now - 60_000, now), 3540);
        assert_eq!(
            write_ttl_secs(hour, now + hour, now),
            7200,
            "future value lives until ts + ttl"
        );
        assert_eq!(
            write_ttl_secs(hour, now - 2 * hour, now),
            1,
            "already expired: minimal TTL"
        );
        assert_eq!(
            write_ttl_secs(hour, now - hour + 1, now),
            1,
            "1 ms left rounds up to 1 s"
        );
        assert_eq!(
            write_ttl_secs(i64::MAX, now, now),
            0,
            "beyond the native maximum: no expiry"
        );
        assert_eq!(
            write_ttl_secs(hour, i64::MAX, now),
            MAX_NATIVE_TTL_SECS as i32,
            "clamped, no overflow"
        );
    }
}
