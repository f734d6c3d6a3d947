//! `Mutation`: one decoded stream message (Chronon's `online.Mutation(schema, before, after)`).

use std::fmt;
use std::sync::Arc;

use super::schema::{DataType, StructType};
use super::value::{Row, Value};

/// What a [`Mutation`] does, read from which images it carries (Chronon's convention in
/// `Api.scala`: an insert has only `after`, an update both, a delete only `before`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MutationKind {
    /// An event or an inserted row: only `after`.
    Insert,
    /// A changed row: `before` and `after`.
    Update,
    /// A deleted row: only `before`.
    Delete,
}

impl fmt::Display for MutationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MutationKind::Insert => "insert",
            MutationKind::Update => "update",
            MutationKind::Delete => "delete",
        })
    }
}

/// A row change (Chronon's `Mutation`). Events are mutations with only an `after` image.
///
/// Construction checks both images against the schema, so a `Mutation` in hand always matches
/// it: a writer never has to guess what a column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    schema: Arc<StructType>,
    before: Option<Row>,
    after: Option<Row>,
}

/// Why a [`Mutation`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MutationError {
    /// Neither image was given.
    #[error("a mutation needs a before or an after image (or both)")]
    Empty,
    /// An image has the wrong number of values.
    #[error("{image} image has {found} values but schema {schema} has {expected} columns")]
    Arity {
        /// `before` or `after`.
        image: &'static str,
        /// The schema's name.
        schema: String,
        /// Columns in the schema.
        expected: usize,
        /// Values in the row.
        found: usize,
    },
    /// A value is not of its column's type.
    #[error("{image} image, column {field}: {detail}")]
    Type {
        /// `before` or `after`.
        image: &'static str,
        /// The column (and path inside it).
        field: String,
        /// The expected type.
        expected: String,
        /// What was found.
        found: String,
        /// The whole explanation.
        detail: String,
    },
}

impl Mutation {
    /// A mutation with the given images; rejects rows that do not match `schema`.
    pub fn new(
        schema: Arc<StructType>,
        before: Option<Row>,
        after: Option<Row>,
    ) -> Result<Self, MutationError> {
        if before.is_none() && after.is_none() {
            return Err(MutationError::Empty);
        }
        if let Some(row) = &before {
            check_row(&schema, row, "before")?;
        }
        if let Some(row) = &after {
            check_row(&schema, row, "after")?;
        }
        Ok(Mutation {
            schema,
            before,
            after,
        })
    }

    /// An event (or INSERT): only `after`.
    pub fn insert(schema: Arc<StructType>, row: Row) -> Result<Self, MutationError> {
        Self::new(schema, None, Some(row))
    }

    /// An UPDATE: both images.
    pub fn update(schema: Arc<StructType>, before: Row, after: Row) -> Result<Self, MutationError> {
        Self::new(schema, Some(before), Some(after))
    }

    /// A DELETE: only `before`.
    pub fn delete(schema: Arc<StructType>, before: Row) -> Result<Self, MutationError> {
        Self::new(schema, Some(before), None)
    }

    /// Which change this is.
    pub fn kind(&self) -> MutationKind {
        match (&self.before, &self.after) {
            (Some(_), Some(_)) => MutationKind::Update,
            (Some(_), None) => MutationKind::Delete,
            _ => MutationKind::Insert,
        }
    }

    /// The schema both images follow.
    pub fn schema(&self) -> &Arc<StructType> {
        &self.schema
    }

    /// The row before the change (updates and deletes).
    pub fn before(&self) -> Option<&Row> {
        self.before.as_ref()
    }

    /// The row after the change (events, inserts and updates).
    pub fn after(&self) -> Option<&Row> {
        self.after.as_ref()
    }

    /// An update whose images are equal changes nothing; Chronon's streaming job drops these
    /// (`!(before sameElements after)`), and so does the writer.
    pub fn is_noop(&self) -> bool {
        matches!((&self.before, &self.after), (Some(b), Some(a)) if a == b)
    }

    /// The images, `(before, after)`.
    pub fn into_parts(self) -> (Option<Row>, Option<Row>) {
        (self.before, self.after)
    }
}

/// Checks one row against a schema (arity and every column's type, null allowed).
pub fn check_row(
    schema: &StructType,
    row: &[Value],
    image: &'static str,
) -> Result<(), MutationError> {
    if row.len() != schema.fields.len() {
        return Err(MutationError::Arity {
            image,
            schema: schema.name.clone(),
            expected: schema.fields.len(),
            found: row.len(),
        });
    }
    for (value, field) in row.iter().zip(&schema.fields) {
        if let Err(m) = value.check(&field.data_type) {
            let name = if m.path.is_empty() {
                field.name.clone()
            } else if m.path.starts_with('[') {
                format!("{}{}", field.name, m.path)
            } else {
                format!("{}.{}", field.name, m.path)
            };
            return Err(MutationError::Type {
                image,
                detail: format!("expected {}, found {}", m.expected, m.found),
                field: name,
                expected: m.expected,
                found: m.found,
            });
        }
    }
    Ok(())
}

/// The type a column must have to be a time column: `long` epoch millis or `timestamp`.
pub fn is_time_type(dt: &DataType) -> bool {
    matches!(dt, DataType::Long | DataType::Timestamp)
}

#[cfg(test)]
mod tests {
    use super::super::schema::StructField;
    use super::*;

    fn schema() -> Arc<StructType> {
        Arc::new(StructType::new(
            "t",
            vec![
                StructField::new("id", DataType::String),
                StructField::new("n", DataType::Long),
            ],
        ))
    }

    #[test]
    fn kinds_follow_chronon() {
        let r = vec![Value::String("a".into()), Value::Long(1)];
        assert_eq!(
            Mutation::insert(schema(), r.clone()).unwrap().kind(),
            MutationKind::Insert
        );
        assert_eq!(
            Mutation::update(schema(), r.clone(), r.clone())
                .unwrap()
                .kind(),
            MutationKind::Update
        );
        assert!(Mutation::update(schema(), r.clone(), r.clone())
            .unwrap()
            .is_noop());
        assert_eq!(
            Mutation::delete(schema(), r).unwrap().kind(),
            MutationKind::Delete
        );
        assert_eq!(
            Mutation::new(schema(), None, None),
            Err(MutationError::Empty)
        );
    }

    #[test]
    fn rejects_rows_that_do_not_match() {
        let e =
            Mutation::insert(schema(), vec![Value::String("a".into()), Value::Int(1)]).unwrap_err();
        assert!(
            matches!(&e, MutationError::Type { field, .. } if field == "n"),
            "{e}"
        );
        assert!(Mutation::insert(schema(), vec![Value::Null]).is_err());
        assert!(Mutation::insert(schema(), vec![Value::Null, Value::Null]).is_ok());
    }
}
