//! Durable, replicated state: an openraft group over redb.
pub mod model;
