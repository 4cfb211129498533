//! Statements of one transaction sent together. sqlx runs each SQLite connection on a thread of
//! its own, so every statement is a hand-over to that thread and back: two context switches,
//! which cost more than the statement itself (bench/README.md). On SQLite a batch goes as one
//! string, its `$N` parameters numbered across it, in one hand-over; PostgreSQL runs the
//! statements one after another, as before. The results are the same on both.

use futures::TryStreamExt;
use sqlx::Either;
use sqlx::any::AnyRow;

use super::{Backend, Context, Result, StoreTx};

/// A value bound to a batched statement.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
    OptInt(Option<i64>),
    OptText(Option<String>),
}

/// One statement of a batch: its SQL numbers its parameters `$1…` on its own, and holds no `$`
/// anywhere else (they are renumbered by text).
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    pub sql: String,
    pub args: Vec<Arg>,
}

/// What one statement of a batch returned.
#[derive(Default)]
pub(crate) struct Outcome {
    pub rows: Vec<AnyRow>,
}

/// `sql` with each `$N` raised by `offset`.
fn renumbered(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// The statements as one SQLite string, and their arguments in order.
fn joined(stmts: Vec<Stmt>) -> (String, Vec<Arg>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    for stmt in stmts {
        sql.push_str(&renumbered(&stmt.sql, args.len()));
        sql.push_str(";\n");
        args.extend(stmt.args);
    }
    (sql, args)
}

fn query(sql: String, args: Vec<Arg>) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for arg in args {
        q = match arg {
            Arg::Int(v) => q.bind(v),
            Arg::Text(v) => q.bind(v),
            Arg::OptInt(v) => q.bind(v),
            Arg::OptText(v) => q.bind(v),
        };
    }
    q
}

impl StoreTx {
    /// Run `stmts` in this transaction, in order; one [`Outcome`] each. A failing statement
    /// fails the batch, and the transaction with it (it must not be committed).
    pub(crate) async fn batch(&mut self, stmts: Vec<Stmt>) -> Result<Vec<Outcome>> {
        run(&mut self.tx, self.backend, stmts).await
    }
}

impl super::Store {
    /// Run `stmts` outside a transaction, with the turn to write: each lands on its own, in
    /// order, and a failing one stops the rest.
    pub(crate) async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<Outcome>> {
        let mut writer = self.writer().await?;
        run(&mut writer, self.backend, stmts).await
    }
}

async fn run(conn: &mut sqlx::AnyConnection, backend: Backend, stmts: Vec<Stmt>) -> Result<Vec<Outcome>> {
    let count = stmts.len();
    let mut out = Vec::with_capacity(count);
    if count == 0 {
        return Ok(out);
    }
    if backend == Backend::Postgres || count == 1 {
        for stmt in stmts {
            let rows = query(stmt.sql, stmt.args).fetch_all(&mut *conn).await.ctx("batch")?;
            out.push(Outcome { rows });
        }
        return Ok(out);
    }
    let (sql, args) = joined(stmts);
    let mut current = Outcome::default();
    // Several statements in one prepared query: SQLite's driver alone takes them, and sqlx
    // 0.9 marks that deprecated (launchbadge/sqlx#3108) without a replacement that binds
    // parameters. The store tests run batches on a real SQLite file, so an upgrade that
    // drops it fails there, not in production.
    #[allow(deprecated)]
    let mut results = query(sql, args).fetch_many(&mut *conn);
    // SQLite reports each statement's rows, then its end.
    while let Some(item) = results.try_next().await.ctx("batch")? {
        match item {
            Either::Right(row) => current.rows.push(row),
            Either::Left(_) => out.push(std::mem::take(&mut current)),
        }
    }
    if out.len() != count {
        return Err(super::StoreError::Corrupt {
            context: "batch",
            reason: format!("{count} statements sent, {} answered", out.len()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_across_the_batch() {
        let (sql, args) = joined(vec![
            Stmt { sql: "INSERT INTO a VALUES ($1, $2)".into(), args: vec![Arg::Int(1), Arg::Int(2)] },
            Stmt { sql: "UPDATE b SET x = $2 WHERE y = $1 OR z = $10".into(), args: vec![Arg::Int(3), Arg::Int(4)] },
        ]);
        assert_eq!(sql, "INSERT INTO a VALUES ($1, $2);\nUPDATE b SET x = $4 WHERE y = $3 OR z = $12;\n");
        assert_eq!(args.len(), 4);
    }

    #[test]
    fn a_lone_dollar_is_kept() {
        assert_eq!(renumbered("SELECT '$' || $1", 2), "SELECT '$' || $3");
    }
}
