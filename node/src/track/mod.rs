//! The forwarding data path: up tracks (one per published track) and down
//! tracks (one per published track and subscriber).
//!
//! Each up track has one reader (a browser connection's task here, or the
//! relay) that fans packets out to its receivers with `try_send` into
//! bounded queues, so a stalled subscriber loses its own packets rather
//! than delaying everyone else's. Each down track has one writer task that
//! rewrites the header for its leg and hands the packet to the
//! subscriber's connection.
//!
//! [`up`] is free of WebRTC: the publisher sits behind the [`Upstream`]
//! trait, so the room and the relay (and their tests) handle every track
//! alike. [`down`] and [`browser`] are the WebRTC ends.

pub mod browser;
pub mod down;
pub mod up;

pub use browser::{forward_browser_track, BrowserUpstream};
pub use down::{local_track_for, start_down_track, DownTrack};
pub use up::{Origin, SenderReportTap, Sink, UpTrack, Upstream};

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
