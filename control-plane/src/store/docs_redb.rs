//! [`Docs`] and [`DocsMut`] on redb: every document table is a key range
//! of the one `sm_docs` table ([`super::db::DOCS`]), read in the caller's
//! transaction so that a query sees one version of every table.

use super::db::DbError;
use super::docs::{full_key, prefix_end, Docs, DocsMut, Entries};
use redb::{ReadOnlyTable, ReadableTable, Table};

type Raw = &'static [u8];

fn get(
    t: &impl ReadableTable<Raw, Raw>,
    table: &str,
    key: &[u8],
) -> Result<Option<Vec<u8>>, DbError> {
    Ok(t.get(full_key(table, key).as_slice())?
        .map(|v| v.value().to_vec()))
}

fn scan(
    t: &impl ReadableTable<Raw, Raw>,
    table: &str,
    prefix: &[u8],
    reverse: bool,
    limit: usize,
) -> Result<Entries, DbError> {
    let start = full_key(table, prefix);
    let end = prefix_end(&start);
    let skip = table.len() + 1;
    let range = match &end {
        Some(end) => t.range::<&[u8]>(start.as_slice()..end.as_slice())?,
        None => t.range::<&[u8]>(start.as_slice()..)?,
    };
    let mut out = Vec::new();
    let mut push = |item: Result<
        (redb::AccessGuard<'_, Raw>, redb::AccessGuard<'_, Raw>),
        redb::StorageError,
    >|
     -> Result<(), DbError> {
        let (k, v) = item?;
        out.push((k.value()[skip..].to_vec(), v.value().to_vec()));
        Ok(())
    };
    if reverse {
        for item in range.rev().take(limit) {
            push(item)?;
        }
    } else {
        for item in range.take(limit) {
            push(item)?;
        }
    }
    Ok(out)
}

impl Docs for ReadOnlyTable<Raw, Raw> {
    fn get_raw(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        get(self, table, key)
    }

    fn scan_raw(
        &self,
        table: &str,
        prefix: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Entries, DbError> {
        scan(self, table, prefix, reverse, limit)
    }
}

impl Docs for Table<'_, Raw, Raw> {
    fn get_raw(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        get(self, table, key)
    }

    fn scan_raw(
        &self,
        table: &str,
        prefix: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Entries, DbError> {
        scan(self, table, prefix, reverse, limit)
    }
}

impl DocsMut for Table<'_, Raw, Raw> {
    fn put_raw(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), DbError> {
        self.insert(full_key(table, key).as_slice(), value)?;
        Ok(())
    }

    fn remove_raw(&mut self, table: &str, key: &[u8]) -> Result<(), DbError> {
        self.remove(full_key(table, key).as_slice())?;
        Ok(())
    }
}
