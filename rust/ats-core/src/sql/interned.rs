//! Normalised statements by id (see [`crate::intern`]): a driver record can
//! name its statement in 4 bytes instead of carrying its four strings.

use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::Normalized;
use crate::intern::InternTable;

/// Approximate bytes of statements held at most.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

static STATEMENTS: InternTable<Arc<Normalized>> = InternTable::new(MAX_BYTES);

/// The id of `statement` (an equal statement gets the same id), or `None`
/// once the table is full.
pub fn intern(statement: &Arc<Normalized>) -> Option<u32> {
    let hash = xxh3_64_with_seed(statement.text.as_bytes(), statement.air_id);
    STATEMENTS.intern(
        hash,
        |s| s.air_id == statement.air_id && s.text == statement.text,
        || Arc::clone(statement),
        statement.approx_bytes(),
    )
}

/// The statement numbered `id`, if any.
pub fn interned(id: u32) -> Option<&'static Arc<Normalized>> {
    STATEMENTS.get(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{normalize, Dialect};

    #[test]
    fn equal_statements_share_an_id_and_read_back() {
        let a = Arc::new(normalize("SELECT name FROM interned_a WHERE id = 1", Dialect::Sqlite));
        let b = Arc::new(normalize("SELECT name FROM interned_a WHERE id = 2", Dialect::Sqlite));
        let c = Arc::new(normalize("SELECT name FROM interned_c WHERE id = 1", Dialect::Sqlite));
        let (ia, ib, ic) = (intern(&a).unwrap(), intern(&b).unwrap(), intern(&c).unwrap());
        assert_eq!(ia, ib, "same normalised text, same id");
        assert_ne!(ia, ic);
        assert_eq!(interned(ia).unwrap().text, "SELECT name FROM interned_a WHERE id = ?");
        assert_eq!(interned(ic).unwrap().tables, vec!["interned_c".to_string()]);
        assert!(interned(u32::MAX).is_none());
    }
}
