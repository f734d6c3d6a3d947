//! Streaming updates: raw stream messages decoded into Chronon [`Mutation`]s and written to the
//! KV store, where the fetcher reads them (Chronon's `StreamDecoder` + streaming `GroupBy` job).
//!
//! - [`schema`]: Chronon's [`DataType`]s, [`StructType`] schemas and their JSON form.
//! - [`value`]: [`Value`]s and rows. [`mutation`]: [`Mutation`] and [`MutationKind`].
//! - [`decoder`]: the [`StreamDecoder`] trait and [`DecodeError`]; decoders for [`csv`], [`json`]
//!   and [`debezium`] change events.
//! - [`avro`]: the row encoding ([`RowCodec`], Avro binary with Chronon's derived schema);
//!   [`key`]: key columns to key bytes ([`KeyCodec`]).
//! - [`writer`]: [`StreamingWriter`], which writes the `<NAME>_STREAMING` dataset in batches with
//!   backpressure, dead letters and at-least-once checkpoints; [`source`]: the [`Source`] trait
//!   with newline-delimited files and stdin.
//!
//! ```
//! use std::sync::Arc;
//! use chronon_serving::stream::{CsvDecoder, LineSource, StreamingWriter, StructType, WriterOptions};
//! use chronon_core::{GetRequest, KvStore, MemoryStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let schema = StructType::from_json_str(r#"{"name": "purchases", "fields": [
//!     {"name": "user_id", "type": "string"}, {"name": "price", "type": "double"},
//!     {"name": "ts", "type": "long"}]}"#)?;
//! let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
//! let writer = StreamingWriter::new(
//!     Arc::new(CsvDecoder::new(schema)),
//!     store.clone(),
//!     WriterOptions::new("team.purchases", ["user_id"], "ts"),
//! )?;
//! let input = "user_id,price,ts\nu1,9.5,1000\nu1,oops,2000\nu1,12.0,3000\n";
//! let source = LineSource::reader(Box::new(input.as_bytes()), "example", None)?;
//! let summary = writer.run(Box::new(source)).await?;
//! assert_eq!((summary.written, summary.bad, summary.skipped), (2, 1, 1));
//!
//! let key = writer.key_codec().encode_values(vec!["u1".into()])?;
//! let got = store.multi_get(vec![GetRequest::range("TEAM_PURCHASES_STREAMING", key, 0, None)]).await;
//! let versions = got[0].values.as_ref().unwrap();
//! assert_eq!(versions.iter().map(|v| v.millis).collect::<Vec<_>>(), vec![1000, 3000]);
//! let row = writer.value_codec().decode(&versions[1].bytes)?;
//! assert_eq!(row, vec![chronon_serving::stream::Value::Double(12.0)]);
//! # Ok(()) }
//! ```

pub mod avro;
pub mod csv;
pub mod dead_letter;
pub mod debezium;
pub mod decoder;
pub mod error;
pub mod json;
pub mod key;
pub mod mutation;
pub mod schema;
pub mod source;
pub mod stats;
pub mod value;
pub mod writer;

pub use avro::{AvroError, RowCodec};
pub use csv::CsvDecoder;
pub use dead_letter::{DatasetDeadLetter, DeadLetter, DeadLetterSink, FileDeadLetter};
pub use debezium::DebeziumDecoder;
pub use decoder::{DataModel, DecodeError, StreamDecoder};
pub use error::StreamError;
pub use json::JsonDecoder;
pub use key::{KeyCodec, KeyError};
pub use mutation::{Mutation, MutationError, MutationKind};
pub use schema::{DataType, SchemaError, StructField, StructType};
pub use source::{CheckpointFile, Committer, LineSource, Message, Position, Source};
pub use stats::{StreamStats, StreamSummary};
pub use value::{Row, Value};
pub use writer::{StreamingWriter, WriterOptions};
