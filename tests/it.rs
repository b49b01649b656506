//! Veche's integration tests, as one test binary.
//!
//! Each file of `tests/` is a module here (`tests/http_api.rs` is
//! `http_api`), and `tests/common/` is the harness they share. One binary
//! rather than one per file, because each binary compiled its own copy of
//! the harness and of the generic code it instantiates (tokio, reqwest,
//! fantoccini, serde) and linked the whole server: on a two-core machine,
//! building 35 of them took longer than running them.
//!
//! A test's name starts with its module, so one file's tests run with
//! `cargo test --test it http_api::` or
//! `cargo nextest run -E 'test(/^http_api::/)'`. See `tests/README.md`.

mod common;

mod accounts;
mod bad_input;
mod browser_accounts;
mod browser_admin;
mod browser_cascade;
mod browser_cluster;
mod browser_covers;
mod browser_e2ee;
mod browser_media_controls;
mod browser_meeting;
mod browser_moderation;
mod browser_p2p;
mod browser_p2p_fallback;
mod browser_passes;
mod browser_recording;
mod browser_strict_networks;
mod browser_watches_a_load_bot;
mod cluster_accounts;
mod cluster_e2ee;
mod cluster_failover;
mod cluster_media_nodes;
mod cluster_membership;
mod deploy_compose;
mod e2ee_cluster;
mod e2ee_signalling;
mod http_admission;
mod http_api;
mod http_timeouts;
mod layering;
mod loadtest_cascade;
mod loadtest_smoke;
mod moderation_media;
mod moderation_signalling;
mod oidc_sso;
mod p2p_signalling;
mod p2p_state;
mod presence;
mod recording_cluster;
mod recording_s3;
mod relay_signalling;
mod restart;
mod resume_media;
mod signalling_limits;
mod statistics;
mod turn_credentials;
mod webhooks;
