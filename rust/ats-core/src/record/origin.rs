//! Where a driver record comes from, by id (see [`crate::intern`]): the
//! resource (tenant, workspace, region), the dialect, the component and the
//! database namespace are the same for every call a plugin makes on one
//! connection through one pipeline, so a record names them in 4 bytes instead
//! of carrying six strings.

use xxhash_rust::xxh3::xxh3_64;

use crate::intern::InternTable;

/// The constant strings of a driver record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverOrigin {
    pub tenant: String,
    pub workspace: String,
    pub region: String,
    pub dialect: String,
    pub component: String,
    pub db_namespace: String,
}

static ORIGINS: InternTable<DriverOrigin> = InternTable::new(1024 * 1024);

/// The id of this origin (the same strings get the same id), or `None` once the table is full.
pub fn intern_origin(
    tenant: &str,
    workspace: &str,
    region: &str,
    dialect: &str,
    component: &str,
    db_namespace: &str,
) -> Option<u32> {
    let parts = [tenant, workspace, region, dialect, component, db_namespace];
    // Only a hash: equality of the parts is checked on every match.
    let hash = xxh3_64(parts.join("\u{0}").as_bytes());
    let bytes = parts.iter().map(|p| p.len()).sum::<usize>() + std::mem::size_of::<DriverOrigin>();
    ORIGINS.intern(
        hash,
        |o| {
            [&o.tenant, &o.workspace, &o.region, &o.dialect, &o.component, &o.db_namespace]
                .into_iter()
                .eq(parts.iter().copied())
        },
        || DriverOrigin {
            tenant: tenant.into(),
            workspace: workspace.into(),
            region: region.into(),
            dialect: dialect.into(),
            component: component.into(),
            db_namespace: db_namespace.into(),
        },
        bytes,
    )
}

/// The origin numbered `id`, if any.
pub fn origin(id: u32) -> Option<&'static DriverOrigin> {
    ORIGINS.get(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_strings_get_the_same_id() {
        let a = intern_origin("acme", "", "eu", "sqlite", "ats-sqlite3", "shop.db").unwrap();
        assert_eq!(intern_origin("acme", "", "eu", "sqlite", "ats-sqlite3", "shop.db"), Some(a));
        let b = intern_origin("acme", "", "eu", "sqlite", "ats-other", "shop.db").unwrap();
        let c = intern_origin("acme", "", "eu", "sqlite", "ats-sqlite3", "other.db").unwrap();
        assert!(a != b && a != c && b != c);
        assert_eq!(origin(b).unwrap().component, "ats-other");
        assert_eq!(origin(c).unwrap().db_namespace, "other.db");
        assert_eq!(origin(a).unwrap().tenant, "acme");
    }
}
