//! Document tables: the shape of every table added after rooms, chat and
//! media nodes (accounts, sessions, passes, statistics, webhooks...).
//!
//! The first tables each have their own redb table, their own apply code
//! in `state_machine.rs`, a second copy of it in `mem.rs`, and their own
//! snapshot field. Every new capability paying that five times over is how
//! two stores drift apart. A document table instead is a named key space
//! in one redb table (`sm_docs`), and a capability writes its apply and its
//! queries once, against the [`Docs`] / [`DocsMut`] traits, which both the
//! redb state machine and [`super::MemStore`] implement. Snapshots carry
//! every document table as one list of key/value pairs, so a new table
//! needs no snapshot change either.
//!
//! Keys are byte strings ordered bytewise: a [`DocKey`] encodes integers
//! big-endian so that numeric order is key order, and a table's name is a
//! prefix (`name` + `0x00`) of every key in it, so a table is one range.

use super::db::DbError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::marker::PhantomData;

/// Entries of a scan: (key without the table, value), in scan order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads of document tables. Object-safe, so that a query can be handed a
/// `&dyn Docs` whatever store is underneath.
pub trait Docs {
    /// The value at `key` of `table`.
    fn get_raw(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, DbError>;

    /// Up to `limit` entries of `table` whose keys start with `prefix`, in
    /// key order (or reverse order), as (key without the table, value).
    fn scan_raw(
        &self,
        table: &str,
        prefix: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Entries, DbError>;
}

/// Writes to document tables, inside one apply.
pub trait DocsMut: Docs {
    /// Sets `key` of `table` to `value`.
    fn put_raw(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), DbError>;
    /// Removes `key` from `table`; removing a missing key is not an error.
    fn remove_raw(&mut self, table: &str, key: &[u8]) -> Result<(), DbError>;
}

/// The full key of `key` in `table`: the name, a zero byte, the key.
/// Table names never contain a zero byte (they are `&'static str`
/// constants), so no table's range overlaps another's.
pub(crate) fn full_key(table: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(table.len() + 1 + key.len());
    k.extend_from_slice(table.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

/// The smallest byte string greater than every string that starts with
/// `prefix`, or `None` if there is none (all 0xff).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A key of a document table, encoded so that byte order is the order
/// queries want.
pub trait DocKey {
    /// Appends the encoding to `out`.
    fn encode_key(&self, out: &mut Vec<u8>);

    /// The encoding alone.
    fn key_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_key(&mut out);
        out
    }
}

impl DocKey for u64 {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}

impl DocKey for str {
    /// Strings end with a zero byte, so that in a tuple key `("a", 2)`
    /// and `("a\u{1}", ..)` cannot collide and a string is a prefix
    /// of its tuples. Keys containing a zero byte are refused by the
    /// callers that build them from input (emails, names).
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
        out.push(0);
    }
}

impl DocKey for String {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.as_str().encode_key(out)
    }
}

impl DocKey for [u8; 32] {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl<A: DocKey, B: DocKey> DocKey for (A, B) {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.0.encode_key(out);
        self.1.encode_key(out);
    }
}

impl<T: DocKey + ?Sized> DocKey for &T {
    fn encode_key(&self, out: &mut Vec<u8>) {
        (**self).encode_key(out)
    }
}

/// A typed view of one document table: keys `K`, values `V` stored as
/// named MessagePack (as every stored value; see `db.rs`).
pub struct DocTable<K: ?Sized, V> {
    name: &'static str,
    _types: PhantomData<fn(&K) -> V>,
}

impl<K: DocKey + ?Sized, V: Serialize + DeserializeOwned> DocTable<K, V> {
    /// The table called `name`. Names are part of the stored format: never
    /// rename one.
    pub const fn new(name: &'static str) -> Self {
        DocTable {
            name,
            _types: PhantomData,
        }
    }

    /// The value at `key`.
    pub fn get(&self, docs: &(impl Docs + ?Sized), key: &K) -> Result<Option<V>, DbError> {
        docs.get_raw(self.name, &key.key_bytes())?
            .map(|v| super::db::decode(&v))
            .transpose()
    }

    /// Whether `key` is present.
    pub fn contains(&self, docs: &(impl Docs + ?Sized), key: &K) -> Result<bool, DbError> {
        Ok(docs.get_raw(self.name, &key.key_bytes())?.is_some())
    }

    /// Sets `key` to `value`.
    pub fn put(
        &self,
        docs: &mut (impl DocsMut + ?Sized),
        key: &K,
        value: &V,
    ) -> Result<(), DbError> {
        docs.put_raw(self.name, &key.key_bytes(), &super::db::encode(value)?)
    }

    /// Removes `key`.
    pub fn remove(&self, docs: &mut (impl DocsMut + ?Sized), key: &K) -> Result<(), DbError> {
        docs.remove_raw(self.name, &key.key_bytes())
    }

    /// Up to `limit` values whose keys start with `prefix` (an encoded
    /// key prefix, e.g. `user_id.key_bytes()` for a `(user, ..)` key), in
    /// key order or reversed.
    pub fn scan(
        &self,
        docs: &(impl Docs + ?Sized),
        prefix: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<V>, DbError> {
        docs.scan_raw(self.name, prefix, reverse, limit)?
            .into_iter()
            .map(|(_, v)| super::db::decode(&v))
            .collect()
    }

    /// Up to `limit` raw keys (without the table) and values whose keys
    /// start with `prefix`, for tables whose key carries data.
    pub fn scan_keys(
        &self,
        docs: &(impl Docs + ?Sized),
        prefix: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, V)>, DbError> {
        docs.scan_raw(self.name, prefix, reverse, limit)?
            .into_iter()
            .map(|(k, v)| Ok((k, super::db::decode(&v)?)))
            .collect()
    }
}

/// A counter kept in the `counters` document table: the next id of some
/// kind (users, passes...). Ids start at 1 and never repeat.
pub(crate) fn next_id(docs: &mut (impl DocsMut + ?Sized), kind: &str) -> Result<u64, DbError> {
    const COUNTERS: DocTable<str, u64> = DocTable::new("counters");
    let id = COUNTERS.get(docs, kind)?.unwrap_or(0) + 1;
    COUNTERS.put(docs, kind, &id)?;
    Ok(id)
}

/// Document tables in memory: [`super::MemStore`]'s, and the form they
/// travel in inside a snapshot.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemDocs(pub(crate) BTreeMap<Vec<u8>, Vec<u8>>);

impl Docs for MemDocs {
    fn get_raw(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        Ok(self.0.get(&full_key(table, key)).cloned())
    }

    fn scan_raw(
        &self,
        table: &str,
        prefix: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Entries, DbError> {
        let start = full_key(table, prefix);
        let skip = table.len() + 1;
        let range = match prefix_end(&start) {
            Some(end) => self.0.range(start..end),
            None => self.0.range(start..),
        };
        let item = |(k, v): (&Vec<u8>, &Vec<u8>)| (k[skip..].to_vec(), v.clone());
        Ok(if reverse {
            range.rev().take(limit).map(item).collect()
        } else {
            range.take(limit).map(item).collect()
        })
    }
}

impl DocsMut for MemDocs {
    fn put_raw(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), DbError> {
        self.0.insert(full_key(table, key), value.to_vec());
        Ok(())
    }

    fn remove_raw(&mut self, table: &str, key: &[u8]) -> Result<(), DbError> {
        self.0.remove(&full_key(table, key));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: DocTable<(u64, &str), String> = DocTable::new("t");
    const U: DocTable<u64, String> = DocTable::new("t\u{1}");

    #[test]
    fn a_scan_sees_its_own_table_and_prefix_only_in_key_order() {
        let mut d = MemDocs::default();
        T.put(&mut d, &(2, "b"), &"2b".into()).unwrap();
        T.put(&mut d, &(2, "a"), &"2a".into()).unwrap();
        T.put(&mut d, &(1, "z"), &"1z".into()).unwrap();
        T.put(&mut d, &(256, "a"), &"256a".into()).unwrap();
        U.put(&mut d, &2, &"other table".into()).unwrap();
        assert_eq!(
            T.scan(&d, &[], false, 10).unwrap(),
            ["1z", "2a", "2b", "256a"]
        );
        assert_eq!(
            T.scan(&d, &2u64.key_bytes(), true, 10).unwrap(),
            ["2b", "2a"]
        );
        assert_eq!(T.scan(&d, &2u64.key_bytes(), false, 1).unwrap(), ["2a"]);
        T.remove(&mut d, &(2, "a")).unwrap();
        assert_eq!(T.get(&d, &(2, "a")).unwrap(), None);
        assert_eq!(U.scan(&d, &[], false, 10).unwrap(), ["other table"]);
    }

    #[test]
    fn counters_start_at_one_and_are_per_kind() {
        let mut d = MemDocs::default();
        assert_eq!(next_id(&mut d, "users").unwrap(), 1);
        assert_eq!(next_id(&mut d, "users").unwrap(), 2);
        assert_eq!(next_id(&mut d, "passes").unwrap(), 1);
    }

    #[test]
    fn prefix_end_is_the_next_string_after_every_extension() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
