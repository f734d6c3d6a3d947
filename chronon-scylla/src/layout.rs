//! How data sits in CQL: the largest value a cell takes, and dataset names to CQL table names.
//!
//! The contract (`chronon-core/CONTRACT.md`) allows dataset names of up to 128 characters of `[A-Za-z0-9_]`; CQL table names are at
//! most 48 characters (Cassandra's `SchemaConstants.NAME_LENGTH`, the same limit in ScyllaDB).
//! Dataset names are case-sensitive and every statement quotes the table name, so
//! `PURCHASES_BATCH` and `purchases_batch` are two tables.
//!
//! The rule, written so a JVM or Python tool can compute it too:
//!
//! - a name of at most 48 characters that starts with an ASCII letter, and is not `datasets`
//!   (the metadata table), is used as the table name unchanged;
//! - any other valid dataset name maps to `HEAD_HASH`: `HEAD` is its first 31 characters
//!   (prefixed with `t` and cut to 30 when the name starts with `_` or a digit, since some CQL
//!   implementations require a table name to start with a letter), and `HASH` is the first 8 bytes
//!   of the SHA-256 of the full name as 16 lowercase hex digits. The result is exactly 48 characters.
//!
//! Two long names that share their first 31 characters get different hashes. The mapping is kept
//! in the `datasets` table (keyed by physical name, holding the dataset's own name), so a
//! physical name already owned by another dataset (a 64-bit hash collision, or a short name that
//! happens to look like another's mapped name) is detected and refused at `create`.

use sha2::{Digest, Sha256};

/// The largest value accepted: 1 MiB. CQL itself allows far more (a mutation may be half a
/// commitlog segment, 16 MiB by default), but both ScyllaDB and Cassandra warn about cells above
/// 1 MiB and large partitions hurt every read of them; 1 MiB is well above the contract's 300 KiB
/// floor.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// CQL's longest keyspace or table name.
pub const MAX_CQL_NAME: usize = 48;

/// The metadata table's name, which no dataset may use as its table.
pub const DATASETS_TABLE: &str = "datasets";

/// Characters of the dataset name kept in front of the hash.
const HEAD_CHARS: usize = 31;

/// The CQL table name for a (valid) dataset name; see the module docs for the rule.
pub fn physical_name(dataset: &str) -> String {
    let starts_with_letter = dataset
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic());
    if dataset.len() <= MAX_CQL_NAME && starts_with_letter && dataset != DATASETS_TABLE {
        return dataset.to_string();
    }
    let digest = Sha256::digest(dataset.as_bytes());
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let head: String = if starts_with_letter {
        dataset.chars().take(HEAD_CHARS).collect()
    } else {
        std::iter::once('t')
            .chain(dataset.chars().take(HEAD_CHARS - 1))
            .collect()
    };
    format!("{head}_{hash}")
}

/// Whether `name` is a keyspace name CQL accepts: 1–48 of `[A-Za-z0-9_]`, starting with a letter.
pub fn is_valid_keyspace(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CQL_NAME
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept_as_they_are() {
        assert_eq!(physical_name("PURCHASES_BATCH"), "PURCHASES_BATCH");
        assert_eq!(physical_name("purchases_batch"), "purchases_batch");
        let exactly_48 = format!("a{}", "b".repeat(47));
        assert_eq!(physical_name(&exactly_48), exactly_48);
    }

    #[test]
    fn long_names_map_to_48_chars_with_prefix_and_hash() {
        let long = format!("a{}", "b".repeat(48)); // 49 chars
        let p = physical_name(&long);
        assert_eq!(p.len(), MAX_CQL_NAME, "{p}");
        assert!(p.starts_with(&long[..31]), "{p}");
        assert_eq!(&p[31..32], "_");
        assert!(
            p[32..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{p}"
        );
        let max = "x".repeat(128);
        assert_eq!(physical_name(&max).len(), MAX_CQL_NAME);
    }

    #[test]
    fn mapping_is_deterministic_and_documented() {
        // Expected hashes computed outside Rust with `printf '%s' NAME | sha256sum | cut -c1-16`,
        // so a port of the rule to another language can be checked against the same values.
        let long = format!("a{}", "b".repeat(48));
        assert_eq!(
            physical_name(&long),
            format!("{}_4f8c133a172b761e", &long[..31])
        );
        assert_eq!(physical_name("_x"), "t_x_a01e47cb4cec0963");
        assert_eq!(physical_name("datasets"), "datasets_714284abfa95a144");
    }

    #[test]
    fn long_names_sharing_a_prefix_do_not_collide() {
        let prefix = "user_features_v2_".repeat(3); // 51 chars, shared
        let a = format!("{prefix}_BATCH");
        let b = format!("{prefix}_STREAMING");
        let (pa, pb) = (physical_name(&a), physical_name(&b));
        assert_eq!(&pa[..31], &pb[..31], "same head");
        assert_ne!(pa, pb, "different hashes");
        // Case matters: datasets are case-sensitive, so their tables are too.
        assert_ne!(physical_name(&a.to_uppercase()), pa);
        // Many names sharing a 100-char prefix: all distinct.
        let base = "p".repeat(100);
        let names: std::collections::HashSet<String> = (0..2000)
            .map(|i| physical_name(&format!("{base}{i}")))
            .collect();
        assert_eq!(names.len(), 2000);
    }

    #[test]
    fn names_not_starting_with_a_letter_and_the_metadata_name_are_mapped() {
        let p = physical_name("_x");
        assert!(p.starts_with("t_x_"), "{p}");
        assert_eq!(p.len(), "t_x_".len() + 16);
        let long_underscore = format!("_{}", "a".repeat(60));
        let p = physical_name(&long_underscore);
        assert_eq!(p.len(), MAX_CQL_NAME);
        assert!(p.starts_with("t_aaa"), "{p}");
        let p = physical_name(DATASETS_TABLE);
        assert_ne!(p, DATASETS_TABLE);
        assert!(p.starts_with("datasets_"), "{p}");
        // Another case of the same word is a different table and is kept.
        assert_eq!(physical_name("Datasets"), "Datasets");
    }

    #[test]
    fn every_physical_name_is_a_valid_cql_name() {
        for name in [
            "a",
            "_",
            "_x",
            "A_b_9",
            &"z".repeat(128),
            &format!("_{}", "9".repeat(127)),
            "datasets",
        ] {
            let p = physical_name(name);
            assert!(is_valid_keyspace(&p), "{name:?} -> {p:?}");
        }
    }

    #[test]
    fn keyspace_names() {
        assert!(is_valid_keyspace("chronon"));
        assert!(is_valid_keyspace("Chronon_2"));
        for bad in ["", "1ks", "_ks", "a-b", "a.b", "a\"b", &"k".repeat(49)] {
            assert!(!is_valid_keyspace(bad), "{bad:?}");
        }
    }
}
