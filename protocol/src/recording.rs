//! Recordings on the wire: what a media node reports as it records, what
//! the control plane indexes, and what browsers list and play.
//!
//! A recording is started and stopped like any moderator action
//! ([`crate::moderation::ModAction::StartRecording`]): the room's policy
//! then carries the [`ActiveRecording`], every node hosting the room sees
//! it, and each records the participants whose tracks it hosts (the
//! publisher's own node, so a cascaded room adds no hop). A node writes one
//! WebM *file* per participant and source (camera and microphone together;
//! a screen share on its own), in *segments* of about
//! [`crate::limits::recording::SEGMENT_MS`], each an object in the store
//! under [`segment_key`]. The segments of a file, concatenated in order,
//! are the file: a node that dies mid-recording loses at most the segment
//! in progress, and what it uploaded still plays. docs/protocol.md §17
//! describes it for people.

use crate::ids::{InvalidId, NodeId, ParticipantId, RoomId, RoomSlug};
use crate::UnixMillis;
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// An id from 8 random bytes: the prefix and 16 hex digits.
            pub fn from_random(bytes: [u8; 8]) -> Self {
                let mut s = String::with_capacity(17);
                s.push_str($prefix);
                for b in bytes {
                    s.push_str(&format!("{b:02x}"));
                }
                $name(s)
            }
            /// The id as text (safe in a URL path and an object key).
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            /// Only what [`Self::from_random`] makes: the id ends up in
            /// object keys and URLs, so nothing else gets through.
            fn try_from(s: String) -> Result<Self, InvalidId> {
                let ok = s.len() == 17
                    && s.starts_with($prefix)
                    && s[1..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if ok {
                    Ok($name(s))
                } else {
                    Err(InvalidId {
                        what: $what,
                        expected: concat!("\"", $prefix, "\" and 16 lowercase hex digits"),
                    })
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::try_from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

hex_id!(
    /// A recording: one run from "Start recording" to "Stop recording".
    /// Chosen at random by the control plane when the start commits.
    RecordingId,
    "r",
    "recording id"
);
hex_id!(
    /// One recorded file (a participant's camera and microphone, or their
    /// screen share), chosen at random by the node that records it.
    FileId,
    "f",
    "file id"
);

/// Object key of segment `seq` of a file: the segments of a file sort by
/// key in their order.
pub fn segment_key(recording: &RecordingId, file: &FileId, seq: u32) -> String {
    format!("recordings/{recording}/{file}/{seq:05}.webm")
}

/// Key prefix of everything a recording stored (for deletion).
pub fn recording_prefix(recording: &RecordingId) -> String {
    format!("recordings/{recording}/")
}

/// Object key of the one-file export (a grid with mixed audio), made on
/// demand where ffmpeg is installed.
pub fn export_key(recording: &RecordingId) -> String {
    format!("recordings/{recording}/export.webm")
}

/// The recording a room's policy says is running.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveRecording {
    /// Its id.
    pub id: RecordingId,
    /// When the start committed (the node's clock at the action).
    pub started_at_ms: UnixMillis,
    /// Who started it.
    pub started_by: ParticipantId,
    /// Their name, for "Alice started recording".
    pub started_by_name: String,
}

/// What a recorded file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordedSource {
    /// Camera video and microphone audio (either may be missing or muted
    /// for a while: the file has gaps, not a cut).
    Camera,
    /// A screen share (its video, and its audio when shared).
    Screen,
}

/// One uploaded segment of a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// Position in the file, from 0; its object is [`segment_key`].
    pub seq: u32,
    /// Its size in bytes.
    pub bytes: u64,
    /// Media time covered, from the file's start, in milliseconds.
    pub start_ms: u64,
    /// See `start_ms`.
    pub end_ms: u64,
}

/// The end of a file: the node finished it (the participant stopped the
/// source or left, or the recording stopped). The segments listed in
/// `rewritten` were uploaded again with their final bytes (the muxer fills
/// in the header's duration and sizes at the end), so caches must drop
/// them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEnd {
    /// The file's size, all segments together.
    pub bytes: u64,
    /// Its media duration.
    pub duration_ms: u64,
    /// Segments uploaded again at the end.
    #[serde(default)]
    pub rewritten: Vec<u32>,
}

/// What a node says about one file in a report. The first report of a file
/// carries its description; every report may add segments (each seq once;
/// a repeat is ignored) and the last carries `end`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    /// The file.
    pub file_id: FileId,
    /// Whose media.
    pub participant_id: ParticipantId,
    /// Their name when the file started.
    pub display_name: String,
    /// Which media.
    pub source: RecordedSource,
    /// Where the file starts on the recording's timeline: milliseconds
    /// after [`ActiveRecording::started_at_ms`] (by the node's clock, from
    /// RTCP sender reports where the publisher sent them). The player
    /// lines the files up by it.
    pub offset_ms: u64,
    /// New segments, `seq` increasing.
    #[serde(default)]
    pub segments: Vec<SegmentInfo>,
    /// Set once, when the file is complete.
    #[serde(default)]
    pub end: Option<FileEnd>,
}

/// Internal RPC path: a media node reports segments it uploaded
/// ([`RecordingReport`], answered with [`RecordingReportReply`]).
pub const RPC_RECORDING_REPORT: &str = "/internal/v1/recordings/report";

/// Body of [`RPC_RECORDING_REPORT`]. Sent again until acknowledged; the
/// control plane applies each segment once, so a repeat changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingReport {
    /// The reporting node: the files it writes are marked interrupted if
    /// it dies before ending them.
    pub node_id: NodeId,
    /// The room.
    pub room_id: RoomId,
    /// The recording.
    pub recording_id: RecordingId,
    /// Files with news, at most
    /// [`crate::limits::recording::MAX_FILES_PER_REPORT`]. A file is
    /// announced (without segments) as soon as the node starts it, so the
    /// index knows it is coming before the recording stops.
    pub files: Vec<FileReport>,
    /// This node's last report of the recording: every file it wrote for
    /// it has its `end`, and nothing more comes. Sent when the recording
    /// stops (or the node's room closes) even if the node recorded nothing,
    /// because the control plane waits for it from every node that hosted
    /// the room at the stop before it calls the recording ready.
    #[serde(default)]
    pub done: bool,
}

/// Reply to [`RPC_RECORDING_REPORT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingReportReply {
    /// Stored (or already known).
    Stored,
    /// The recording was deleted (or never existed): stop writing it and
    /// drop what is left.
    Gone,
}

/// A recording's state as viewers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// Still being recorded.
    Recording,
    /// Stopped; some files are not finished yet.
    Finishing,
    /// Stopped and every file finished (or interrupted): `recording_ready`
    /// was sent.
    Ready,
}

/// A file's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Segments still arrive.
    Writing,
    /// Finished by its node.
    Complete,
    /// Its node died before finishing it: the uploaded segments are all
    /// there is.
    Interrupted,
}

/// One file, as the recordings API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileView {
    /// The file.
    pub file_id: FileId,
    /// Whose media.
    pub participant_id: ParticipantId,
    /// Their name.
    pub display_name: String,
    /// Which media.
    pub source: RecordedSource,
    /// See [`FileReport::offset_ms`].
    pub offset_ms: u64,
    /// Media duration so far (the last segment's end, or the end's).
    pub duration_ms: u64,
    /// Bytes so far.
    pub bytes: u64,
    /// Segments so far.
    pub segments: u32,
    /// State.
    pub state: FileState,
    /// Where to fetch it (`GET`, with HTTP ranges), relative to the site.
    pub url: String,
}

/// One recording, as the recordings API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingView {
    /// The recording.
    pub id: RecordingId,
    /// The room.
    pub room_id: RoomId,
    /// Its link slug.
    pub room_slug: RoomSlug,
    /// Its name.
    pub room_name: String,
    /// When it started.
    pub started_at_ms: UnixMillis,
    /// When it stopped; `None` while it runs.
    pub stopped_at_ms: Option<UnixMillis>,
    /// Who started it.
    pub started_by_name: String,
    /// State.
    pub state: RecordingState,
    /// Length on the common timeline: the latest file end.
    pub duration_ms: u64,
    /// Bytes, all files.
    pub bytes: u64,
    /// The files, by offset.
    pub files: Vec<FileView>,
    /// Whether the viewer may delete it and make share links (the room's
    /// owner or an administrator).
    pub can_manage: bool,
    /// Whether a one-file export can be made here (ffmpeg is installed on
    /// the control plane); its URL is `{API_RECORDINGS}/{id}/export`.
    pub export_available: bool,
}

/// `GET ?room={slug}&before={ms}&limit={n}`: recordings the caller may see,
/// newest first ([`RecordingPage`]). `GET|DELETE {API_RECORDINGS}/{id}`:
/// one ([`RecordingView`]) or its deletion; `POST {id}/share`
/// ([`ShareRequest`] → [`ShareLink`]); `GET {id}/files/{file}`: a file's
/// bytes (HTTP ranges); `GET {id}/export`: one file of everything.
pub const API_RECORDINGS: &str = "/api/recordings";

/// A page of [`API_RECORDINGS`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingPage {
    /// Newest first.
    pub recordings: Vec<RecordingView>,
    /// Pass as `before` for the next page; `None` on the last.
    pub next_before: Option<UnixMillis>,
}

/// Body of `POST {API_RECORDINGS}/{id}/share`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// How long the link works, in hours, 1 to
    /// [`crate::limits::recording::SHARE_MAX_HOURS`].
    pub valid_hours: u32,
}

/// Reply to a share request: a link anyone holding it may play and
/// download the recording with, until it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareLink {
    /// The player page with the signed `share` query, relative to the site.
    pub url: String,
    /// When it stops working.
    pub expires_at_ms: UnixMillis,
}

/// Query parameter carrying a share link's signed token.
pub const SHARE_QUERY: &str = "share";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_anything_that_is_not_one_of_ours() {
        let r = RecordingId::from_random([0xab; 8]);
        assert_eq!(r.as_str(), "rabababababababab");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<RecordingId>(&json).unwrap(), r);
        for bad in [
            "",
            "r",
            "rABABABABABABABAB",
            "fabababababababab",
            "r../../etc/passw",
            "rabababababababab0",
        ] {
            assert!(bad.parse::<RecordingId>().is_err(), "{bad:?} was accepted");
        }
        assert!("f0123456789abcdef".parse::<FileId>().is_ok());
    }

    #[test]
    fn segment_keys_sort_in_file_order() {
        let r = RecordingId::from_random([1; 8]);
        let f = FileId::from_random([2; 8]);
        let mut keys: Vec<String> = [10, 2, 1, 100]
            .iter()
            .map(|s| segment_key(&r, &f, *s))
            .collect();
        keys.sort();
        assert_eq!(keys[0], segment_key(&r, &f, 1));
        assert_eq!(keys[3], segment_key(&r, &f, 100));
        assert!(keys[0].starts_with(&recording_prefix(&r)));
    }
}
