//! The Veche control plane.
pub mod store;
