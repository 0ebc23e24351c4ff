//! Moving one host's users.db into the fleet's database (`store migrate`):
//! every lasting table row for row, in one write transaction, only into a
//! database that has no accounts yet (hosts that join later share the
//! accounts already there).

use super::{Pg, PgUsers};
use crate::error::{Error, Result};
use postgres::types::ToSql;
use rusqlite::types::Value;
use std::path::Path;

/// The tables moved, parents first. Login attempts, code checks and SSO
/// logins on their way through the provider are not: they last minutes,
/// and the fleet counts its own from the start.
const TABLES: &[&str] = &[
    "users",
    "spend",
    "refresh_tokens",
    "revoked_access",
    "totp",
    "totp_recovery",
    "api_keys",
    "sso_identities",
    "sso_logins",
];

/// What [`PgUsers::import`] moved: rows per table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Imported {
    pub tables: Vec<(String, usize)>,
}

impl Imported {
    pub fn accounts(&self) -> usize {
        self.tables
            .iter()
            .find(|(t, _)| t == "users")
            .map_or(0, |(_, n)| *n)
    }
}

impl PgUsers {
    /// How many accounts the fleet's database holds.
    pub fn account_count(pg: &Pg) -> Result<i64> {
        // Also asked while a command's runtime runs (`chat` opening the
        // store): off it.
        super::off_runtime(|| {
            Ok(pg
                .client()
                .query_one("SELECT count(*) FROM users", &[])
                .map_err(|e| super::pg_error(&pg.target, "counting the accounts in", e))?
                .get(0))
        })
    }

    /// Copies users.db at `path` into this database, which must hold no
    /// account yet (checked under the store's lock, so two hosts migrating
    /// at once cannot both move theirs). `Ok(None)`: it already had some.
    pub fn import(&self, path: &Path) -> Result<Option<Imported>> {
        let src = crate::store::open_own_readonly(path, "users.db")?;
        let mut out = Imported::default();
        let mut rows_of = Vec::new();
        for table in TABLES {
            rows_of.push(read_table(&src, path, table)?);
        }
        self.write("moving accounts into", |tx| {
            let n: i64 = tx.query_one("SELECT count(*) FROM users", &[])?.get(0);
            if n > 0 {
                return Ok(Ok(None));
            }
            for (table, (cols, rows)) in TABLES.iter().zip(&rows_of) {
                let types: Vec<String> = cols
                    .iter()
                    .map(|c| {
                        tx.query_one(
                            "SELECT data_type FROM information_schema.columns
                             WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
                            &[table, c],
                        )
                        .map(|r| r.get(0))
                    })
                    .collect::<std::result::Result<_, _>>()?;
                let marks: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
                let st = tx.prepare(&format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    cols.join(", "),
                    marks.join(", ")
                ))?;
                for row in rows {
                    let values = match convert(table, cols, &types, row) {
                        Ok(v) => v,
                        Err(e) => return Ok(Err(e)),
                    };
                    let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| &**v).collect();
                    tx.execute(&st, &refs)?;
                }
                out.tables.push((table.to_string(), rows.len()));
            }
            Ok(Ok(Some(out.clone())))
        })?
    }
}

/// A table's columns and rows as SQLite holds them.
type Rows = (Vec<String>, Vec<Vec<Value>>);

fn read_table(src: &rusqlite::Connection, path: &Path, table: &str) -> Result<Rows> {
    let err = |e| Error::sqlite(path, &format!("reading {table}"), e);
    let mut st = src
        .prepare(&format!("SELECT * FROM {table}"))
        .map_err(err)?;
    let cols: Vec<String> = st.column_names().iter().map(|c| c.to_string()).collect();
    let n = cols.len();
    let rows = st
        .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .and_then(|it| it.collect::<rusqlite::Result<Vec<Vec<Value>>>>())
        .map_err(err)?;
    Ok((cols, rows))
}

/// One SQLite row as the PostgreSQL column types want it.
fn convert(
    table: &str,
    cols: &[String],
    types: &[String],
    row: &[Value],
) -> Result<Vec<Box<dyn ToSql + Sync>>> {
    cols.iter()
        .zip(types)
        .zip(row)
        .map(|((col, ty), v)| -> Result<Box<dyn ToSql + Sync>> {
            Ok(match (ty.as_str(), v) {
                ("text", Value::Null) => Box::new(None::<String>),
                ("text", Value::Text(s)) => Box::new(s.clone()),
                ("bytea", Value::Null) => Box::new(None::<Vec<u8>>),
                ("bytea", Value::Blob(b)) => Box::new(b.clone()),
                ("bigint", Value::Null) => Box::new(None::<i64>),
                ("bigint", Value::Integer(i)) => Box::new(*i),
                ("double precision", Value::Null) => Box::new(None::<f64>),
                ("double precision", Value::Real(f)) => Box::new(*f),
                ("double precision", Value::Integer(i)) => Box::new(*i as f64),
                ("boolean", Value::Integer(i)) => Box::new(*i != 0),
                (ty, v) => {
                    return Err(Error::corrupt(format!(
                        "users.db: {table}.{col} holds {:?}, which does not fit the fleet's {ty}",
                        v.data_type()
                    ))
                    .hint("nothing was moved; check users.db with `hermes-operator doctor`"))
                }
            })
        })
        .collect()
}
