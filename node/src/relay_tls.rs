//! Mutual TLS for the relay between media nodes (being written).
