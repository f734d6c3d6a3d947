//! [`RocksOptions`]: where the database lives and how it is tuned, with every default written
//! down, and its `rocks:///abs/path?key=value` URL form.

use std::path::PathBuf;
use std::time::Duration;

use chronon_core::config::{redact_url, UrlParams};
use chronon_core::KvError;

/// The URL scheme of this store: `rocks:///abs/path/to/dir`.
pub const SCHEME: &str = "rocks";

/// The backend name in errors, reports and [`KvStore::backend`](chronon_core::KvStore::backend):
/// the same word as the URL scheme.
pub(crate) const BACKEND: &str = "rocks";

/// Block compression of SST files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression.
    None,
    /// LZ4: cheap to decompress, the usual choice for latency-bound feature serving.
    #[default]
    Lz4,
    /// Zstandard: smaller files for a little more CPU per block read.
    Zstd,
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "off" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(format!(
                "unknown compression {other:?} (use none, lz4 or zstd)"
            )),
        }
    }
}

/// How to open and tune a [`RocksStore`](crate::RocksStore).
///
/// Build with [`RocksOptions::new`] (all defaults) and the `with_*` methods, or from a URL with
/// [`RocksOptions::from_url`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RocksOptions {
    /// The database directory (created if missing when `create_if_missing`).
    pub path: PathBuf,
    /// Create the directory and database if they do not exist. Default `true`.
    pub create_if_missing: bool,
    /// Size of the LRU block cache shared by every dataset, in bytes. Default 64 MiB: enough to
    /// keep index and filter blocks plus the hot data blocks of a small feature set in memory.
    pub block_cache_bytes: usize,
    /// Memory all datasets' memtables (writes not yet flushed to SST files) may use together, in
    /// bytes. Default 64 MiB. RocksDB's own default is 64 MiB *per column family*, times two
    /// while one flushes, so a process with many datasets grew by hundreds of MiB under steady
    /// writes (the repository's RELIABILITY.md has the soak run); a shared write-buffer manager flushes
    /// the largest memtable once the total reaches this budget.
    pub memtable_budget_bytes: usize,
    /// Bloom filter bits per key (0 turns filters off). Default 10 (about 1% false positives), so
    /// a lookup of a missing key usually touches no data block: Chronon's fetcher asks for many
    /// keys that have no features.
    pub bloom_bits_per_key: f64,
    /// Block compression. Default [`Compression::Lz4`].
    pub compression: Compression,
    /// Longest any call may take before it returns `KvError::Timeout`. Default 10 s (Chronon's
    /// default fetch timeout is 10,000 ms).
    pub timeout: Duration,
    /// How many RocksDB calls may run at once on tokio's blocking pool. Default 16: enough to keep
    /// the disk and CPUs busy, while 64 callers queue on a semaphore instead of each holding a
    /// blocking thread. Calls never run on the async worker threads.
    pub blocking_threads: usize,
    /// `fsync` the write-ahead log before a put returns. Default `false`: an acknowledged write
    /// survives the process (it is in the WAL, in the OS's cache) but not a power cut; set it
    /// for that, at the cost of write latency.
    pub sync_writes: bool,
    /// Bytes of rows (keys plus values) a `bulk_put` holds in memory before it sorts them and
    /// writes an SST file. Default 64 MiB; peak memory of a bulk load is a small multiple of it.
    pub bulk_chunk_bytes: usize,
    /// Longest one bulk chunk (write its SST file and ingest it) may take. Default 5 minutes: a
    /// whole bulk load has no single deadline, each chunk has this one.
    pub bulk_chunk_timeout: Duration,
}

impl RocksOptions {
    /// Defaults for a database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RocksOptions {
            path: path.into(),
            create_if_missing: true,
            block_cache_bytes: 64 << 20,
            memtable_budget_bytes: 64 << 20,
            bloom_bits_per_key: 10.0,
            compression: Compression::Lz4,
            timeout: Duration::from_secs(10),
            blocking_threads: 16,
            sync_writes: false,
            bulk_chunk_bytes: 64 << 20,
            bulk_chunk_timeout: Duration::from_secs(300),
        }
    }

    /// Sets the block cache size in bytes.
    pub fn with_block_cache_bytes(mut self, bytes: usize) -> Self {
        self.block_cache_bytes = bytes;
        self
    }

    /// Sets the memory budget shared by every dataset's memtables, in bytes.
    pub fn with_memtable_budget_bytes(mut self, bytes: usize) -> Self {
        self.memtable_budget_bytes = bytes.max(1 << 20);
        self
    }

    /// Sets bloom filter bits per key (0: off).
    pub fn with_bloom_bits_per_key(mut self, bits: f64) -> Self {
        self.bloom_bits_per_key = bits;
        self
    }

    /// Sets block compression.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many RocksDB calls run at once on the blocking pool.
    pub fn with_blocking_threads(mut self, threads: usize) -> Self {
        self.blocking_threads = threads.max(1);
        self
    }

    /// Sets whether puts `fsync` the WAL.
    pub fn with_sync_writes(mut self, sync: bool) -> Self {
        self.sync_writes = sync;
        self
    }

    /// Sets the in-memory chunk of a bulk load, in bytes.
    pub fn with_bulk_chunk_bytes(mut self, bytes: usize) -> Self {
        self.bulk_chunk_bytes = bytes.max(1);
        self
    }

    /// Sets whether a missing database is created.
    pub fn with_create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// Options from a `rocks:///abs/path/to/dir?key=value&...` URL.
    ///
    /// Query parameters (all optional; defaults as on the fields): `cache_mb` (block cache,
    /// MiB), `memtable_mb` (memtable budget of all datasets, MiB), `bloom_bits` (bits per key,
    /// 0 = off), `compression` (`none`, `lz4`, `zstd`), `timeout_ms`, `blocking_threads`, `sync`
    /// (`true`/`false`), `create` (`true`/`false`), `bulk_chunk_mb`. They are read by
    /// [`UrlParams`]: an unknown or repeated parameter is an error listing the known ones, so a
    /// typo is not silently ignored; every error is `KvError::Config`.
    ///
    /// ```
    /// let url = "rocks:///var/lib/chronon/kv?cache_mb=256&compression=zstd";
    /// let opts = chronon_rocks::RocksOptions::from_url(url).unwrap();
    /// assert_eq!(opts.path, std::path::PathBuf::from("/var/lib/chronon/kv"));
    /// assert_eq!(opts.block_cache_bytes, 256 << 20);
    /// ```
    pub fn from_url(url: &str) -> Result<Self, KvError> {
        let bad = |reason: String| {
            KvError::config(
                BACKEND,
                format!("bad RocksDB URL {}: {reason}", redact_url(url)),
            )
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a URL ({e})")))?;
        if parsed.scheme() != SCHEME {
            return Err(bad(format!("the scheme must be {SCHEME}://")));
        }
        match parsed.host_str() {
            None | Some("") | Some("localhost") => {}
            Some(host) => {
                return Err(bad(format!(
                    "{host:?} is read as a host; write an absolute path with three slashes: {SCHEME}:///abs/path"
                )))
            }
        }
        if parsed.path().is_empty() || parsed.path() == "/" {
            return Err(bad("no directory given (rocks:///abs/path/to/dir)".into()));
        }
        let path = percent_encoding::percent_decode_str(parsed.path())
            .decode_utf8()
            .map_err(|e| bad(format!("the path is not UTF-8 once decoded: {e}")))?;
        let mut opts = RocksOptions::new(PathBuf::from(path.as_ref()));
        let pairs = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()));
        let mut params = UrlParams::new(BACKEND, url, pairs);
        if let Some(bytes) = mebibytes(&mut params, "cache_mb")? {
            opts.block_cache_bytes = bytes;
        }
        if let Some(bytes) = mebibytes(&mut params, "memtable_mb")? {
            opts.memtable_budget_bytes = bytes.max(1 << 20);
        }
        if let Some(bits) = params.f64("bloom_bits")? {
            if bits < 0.0 {
                return Err(params.invalid("bloom_bits", &bits.to_string(), "a number >= 0"));
            }
            opts.bloom_bits_per_key = bits;
        }
        if let Some(compression) = params.parse("compression", "one of none|lz4|zstd")? {
            opts.compression = compression;
        }
        if let Some(timeout) = params.millis("timeout_ms")? {
            opts.timeout = timeout;
        }
        if let Some(threads) = params.usize("blocking_threads")? {
            opts.blocking_threads = threads.max(1);
        }
        if let Some(sync) = params.bool("sync")? {
            opts.sync_writes = sync;
        }
        if let Some(create) = params.bool("create")? {
            opts.create_if_missing = create;
        }
        if let Some(bytes) = mebibytes(&mut params, "bulk_chunk_mb")? {
            opts.bulk_chunk_bytes = bytes.max(1);
        }
        params.finish()?;
        opts.validate()?;
        Ok(opts)
    }

    /// Checks what the types allow but RocksDB cannot use: an empty path, and a bloom filter
    /// size that is negative or not a number. [`RocksStore::open`](crate::RocksStore::open)
    /// calls it, so options built field by field are checked too.
    pub fn validate(&self) -> Result<(), KvError> {
        if self.path.as_os_str().is_empty() {
            return Err(KvError::config(BACKEND, "no database directory given"));
        }
        if !(self.bloom_bits_per_key.is_finite() && self.bloom_bits_per_key >= 0.0) {
            return Err(KvError::config(
                BACKEND,
                format!(
                    "bloom_bits_per_key = {} is not a number >= 0",
                    self.bloom_bits_per_key
                ),
            ));
        }
        Ok(())
    }
}

/// A `*_mb` parameter in bytes (MiB), refusing a size this machine cannot hold.
fn mebibytes(params: &mut UrlParams, name: &'static str) -> Result<Option<usize>, KvError> {
    let Some(mb) = params.usize(name)? else {
        return Ok(None);
    };
    mb.checked_mul(1 << 20)
        .map(Some)
        .ok_or_else(|| params.invalid(name, &mb.to_string(), "a size in MiB this machine can hold"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RocksOptions, KvError> {
        RocksOptions::from_url(s)
    }

    #[test]
    fn plain_path_gets_defaults() {
        let o = parse("rocks:///tmp/x").unwrap();
        assert_eq!(o, RocksOptions::new("/tmp/x"));
        assert_eq!(o.timeout, Duration::from_secs(10));
        assert_eq!(o.compression, Compression::Lz4);
    }

    #[test]
    fn query_options() {
        let o = parse(
            "rocks:///data/kv%20store?cache_mb=8&bloom_bits=0&compression=zstd&timeout_ms=250\
             &blocking_threads=4&sync=true&create=false&bulk_chunk_mb=16&memtable_mb=32",
        )
        .unwrap();
        assert_eq!(o.path, PathBuf::from("/data/kv store"));
        assert_eq!(o.block_cache_bytes, 8 << 20);
        assert_eq!(o.memtable_budget_bytes, 32 << 20);
        assert_eq!(o.bloom_bits_per_key, 0.0);
        assert_eq!(o.compression, Compression::Zstd);
        assert_eq!(o.timeout, Duration::from_millis(250));
        assert_eq!(o.blocking_threads, 4);
        assert!(o.sync_writes);
        assert!(!o.create_if_missing);
        assert_eq!(o.bulk_chunk_bytes, 16 << 20);
    }

    #[test]
    fn bad_urls_are_config_errors() {
        for (url, needle) in [
            ("rocks://tmp/x", "three slashes"),
            ("rocks:///", "no directory"),
            ("redis:///tmp/x", "scheme"),
            ("not a url", "not a URL"),
            ("rocks:///tmp/x?cache=1", "unknown parameter cache (known: "),
            ("rocks:///tmp/x?cache_mb=lots", "whole number"),
            ("rocks:///tmp/x?cache_mb=1&cache_mb=2", "more than once"),
            ("rocks:///tmp/x?cache_mb=99999999999999999", "can hold"),
            ("rocks:///tmp/x?bloom_bits=-1", "a number >= 0"),
            ("rocks:///tmp/x?bloom_bits=NaN", "finite"),
            ("rocks:///tmp/x?compression=snappy", "unknown compression"),
            ("rocks:///tmp/x?sync=maybe", "`true` or `false`"),
            ("rocks:///tmp/x?sync=1", "`true` or `false`"),
        ] {
            let e = parse(url).unwrap_err();
            assert!(matches!(e, KvError::Config { .. }), "{url}: {e:?}");
            assert!(e.to_string().contains(needle), "{url}: {e}");
        }
    }

    #[test]
    fn validate_rejects_what_rocksdb_cannot_use() {
        assert!(RocksOptions::new("/tmp/x").validate().is_ok());
        assert!(RocksOptions::new("").validate().is_err());
        let nan = RocksOptions::new("/tmp/x").with_bloom_bits_per_key(f64::NAN);
        assert!(matches!(nan.validate(), Err(KvError::Config { .. })));
    }
}
