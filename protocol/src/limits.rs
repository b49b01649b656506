//! Every size and rate limit at an untrusted edge, in one table.
//!
//! The media node's signalling sessions, the control plane's HTTP routes and
//! the relay all read their limits from here, and `docs/protocol.md` §10
//! lists the same numbers. A limit that lives anywhere else is a bug: a new
//! edge adds its row here, with a test that exercises it.
//!
//! Rates are token buckets ([`TokenBucket`], in `token_bucket.rs`): a burst that a well-behaved
//! client never exceeds, then a steady refill. Time is passed in, so the
//! decisions are testable without a clock.

pub use crate::token_bucket::TokenBucket;

/// A token-bucket rate: up to `burst` at once, then `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens available at once (and at start).
    pub burst: u32,
    /// Tokens added per second, up to `burst`.
    pub per_second: f64,
}

impl Rate {
    /// A fresh bucket for this rate, full at `now_ms`.
    pub fn bucket(self, now_ms: u64) -> TokenBucket {
        TokenBucket::new(self.burst, self.per_second, now_ms)
    }
}

/// Limits on one browser's signalling session (WebSocket, JSON frames).
pub mod signal {
    use super::Rate;

    /// Largest text frame a client may send, in bytes.
    pub const MAX_FRAME_BYTES: usize = 256 * 1024;
    /// `media` (mute, camera, screen, hand state) changes. A person clicking
    /// never gets near it; a script toggling in a loop does.
    pub const MEDIA: Rate = Rate {
        burst: 20,
        per_second: 5.0,
    };
    /// `offer` (renegotiation: publish, unpublish, device switch).
    pub const OFFER: Rate = Rate {
        burst: 10,
        per_second: 1.0,
    };
    /// `answer` to the node's offers.
    pub const ANSWER: Rate = Rate {
        burst: 10,
        per_second: 2.0,
    };
    /// Trickled ICE `candidate`s: a browser gathers a few dozen per
    /// negotiation at most.
    pub const CANDIDATE: Rate = Rate {
        burst: 100,
        per_second: 20.0,
    };
    /// `chat` messages: a burst of 10, then 2 per second. A person typing
    /// never hits it; a script pasting in a loop does.
    pub const CHAT: Rate = Rate {
        burst: 10,
        per_second: 2.0,
    };
    /// `ping`s: the web client sends one every 5 s.
    pub const PING: Rate = Rate {
        burst: 10,
        per_second: 2.0,
    };
    /// Frames of any kind, including malformed ones: the ceiling over the
    /// per-kind budgets, so that garbage costs its sender too.
    pub const ANY: Rate = Rate {
        burst: 200,
        per_second: 50.0,
    };
    /// Refused frames (over budget or malformed) a session may send within
    /// [`STRIKE_WINDOW_MS`] before the node closes it with
    /// `CLOSE_POLICY` (4008): a client that keeps going after being told
    /// is not a client that will stop.
    pub const MAX_STRIKES: u32 = 100;
    /// The window over which strikes are counted.
    pub const STRIKE_WINDOW_MS: u64 = 10_000;
    /// Published tracks per participant: microphone, camera, and a screen
    /// share with its audio.
    pub const MAX_TRACKS: usize = 4;
    /// Longest `client_msg_id`, in bytes.
    pub const MAX_CLIENT_MSG_ID_BYTES: usize = 64;
    /// Messages queued for one participant's socket before the node counts
    /// the participant as too slow and closes the session with
    /// `CLOSE_TOO_SLOW` (4011). Bounded so that a reader that stopped
    /// reading cannot grow the node's memory. Refusal replies stop at
    /// three-quarters full, so a flooder cannot fill it with its own
    /// `rate_limited` errors.
    pub const OUTBOUND_QUEUE: usize = 512;
    /// The browser's offers, answers and candidates waiting for its
    /// peer-connection actor. Above the `CANDIDATE` burst, so that a
    /// client within its budgets is never refused while the actor is busy
    /// applying an offer (which waits up to 2 s for ICE gathering).
    pub const PEER_QUEUE: usize = 128;
    /// Chat messages of one participant waiting to be committed.
    pub const CHAT_QUEUE: usize = 16;
    /// `moderate` actions: a moderator clicking through a list of fifty
    /// people stays inside it; a script does not.
    pub const MODERATE: Rate = Rate {
        burst: 20,
        per_second: 4.0,
    };
    /// `hand` raises and lowers.
    pub const HAND: Rate = Rate {
        burst: 10,
        per_second: 2.0,
    };
    /// Moderation actions of one participant waiting for the control plane.
    pub const MODERATE_QUEUE: usize = 16;
    /// `peer_signal`s relayed to the other participant of a peer-to-peer
    /// pair: an offer, an answer and a few dozen trickled candidates per
    /// attempt, and an ICE restart now and then.
    pub const PEER_SIGNAL: Rate = Rate {
        burst: 100,
        per_second: 20.0,
    };
    /// Longest SDP (or candidate line) in a `peer_signal`, in bytes: a
    /// browser's offer with audio, video and a screen share is 6-12 KB.
    pub const MAX_PEER_SIGNAL_BYTES: usize = 64 * 1024;
    /// How long a room that had more than two participants waits, once it
    /// is down to two, before pairing them directly again: someone
    /// dropping and coming back within it does not cost two switches.
    pub const P2P_SETTLE_MS: u64 = 5_000;
    /// `p2p_state` reports: one `connected` and perhaps one `failed` per
    /// pairing, so a handful per switch is plenty.
    pub const P2P_STATE: Rate = Rate {
        burst: 10,
        per_second: 1.0,
    };
    /// How long both of a pair have to report `connected` before the node
    /// gives up on the direct path and switches the room to the SFU (and
    /// does not pair those two again until the membership changes): a
    /// direct connection that works decodes within a few seconds, also
    /// through TURN.
    pub const P2P_CONNECT_TIMEOUT_MS: u64 = 10_000;
}

/// Limits on a room's moderation state ([`crate::moderation::RoomPolicy`]),
/// which every media node hosting the room keeps a copy of, so it must stay
/// small whatever moderators do.
pub mod moderation {
    /// Longest participant id accepted in an action (ours are 17 bytes).
    pub const MAX_ID_BYTES: usize = 32;
    /// Entries in each of the policy's sets and maps (hosts, moderators,
    /// speakers, holds, removed, admitted, denied). A meeting has at most a
    /// few hundred people over its life. When full, hosts and admissions
    /// drop their lowest other ids and removals their oldest entry (a room
    /// reused for months keeps adding them); the other sets refuse one more
    /// (`moderation_rules.rs`), since forgetting a moderator or a hold
    /// would silently change who may do what.
    pub const MAX_ENTRIES: usize = 1_000;
    /// People waiting in one room's lobby on one media node.
    pub const MAX_LOBBY: usize = 200;
    /// How long a lobby with waiters and no host or moderator present
    /// stays closed before it lets its waiters in, by default: waiters are
    /// never stranded by a moderator who left.
    pub const LOBBY_UNATTENDED_MS: u64 = 60_000;
    /// Largest body of a moderation RPC (`RPC_MODERATE`): an action and
    /// up to [`MAX_ENTRIES`] present participants of about 100 bytes each.
    pub const MAX_RPC_BODY_BYTES: usize = 256 * 1024;
}

/// Limits on the relay between media nodes (mutually authenticated, but a
/// broken or compromised peer must not take a node down).
pub mod relay {
    /// Largest control frame accepted. A room's full state for 60 participants
    /// is about 20 KiB; this leaves ample room and bounds what a broken peer
    /// can make a node buffer.
    pub const MAX_CONTROL_FRAME: usize = 1 << 20;

    /// Deepest nesting of MessagePack maps and arrays accepted in a control
    /// frame. The deepest real message (`room_state`) nests about 6 levels.
    /// rmp_serde's own limit is 1024, and `RelayMsg`, an internally tagged
    /// enum, buffers the whole frame through serde's recursive `Content`
    /// first: in an unoptimised build, 1024 levels of that overflowed a 2 MiB
    /// tokio worker stack (found while fuzzing the relay, by a deep-nesting
    /// probe on a debug build; see docs/robustness.md).
    pub const MAX_CONTROL_DEPTH: usize = 32;
}

/// Limits on the internal RPC and Raft bodies between cluster members
/// (behind the cluster secret).
pub mod rpc {
    /// Deepest nesting of MessagePack maps and arrays accepted from a peer.
    /// Real bodies nest about a dozen levels; rmp_serde's default (1024)
    /// overflowed a 2 MiB tokio worker stack in a debug build
    /// (docs/robustness.md).
    pub const MAX_RPC_DEPTH: usize = 64;
}

/// Limits on the control plane's public HTTP API, per client address.
pub mod http {
    use super::Rate;

    /// Largest request body on any route, in bytes.
    pub const MAX_BODY_BYTES: usize = 16 * 1024;
    /// A request that takes longer than this is answered 503 and dropped.
    pub const REQUEST_TIMEOUT_MS: u64 = 15_000;
    /// A connection must deliver a request's complete headers within this
    /// long, counted from when the server starts waiting for them: after
    /// it is accepted, and again after each response while it idles in
    /// keep-alive. Otherwise it is closed, so a client that sends its
    /// headers byte by byte (slowloris), or nothing, cannot hold a socket
    /// and a task. Upgraded connections (WebSockets) are no longer HTTP
    /// and are not affected.
    pub const HEADER_READ_TIMEOUT_MS: u64 = 10_000;
    /// Open HTTP connections per process, upgraded WebSockets included.
    /// Beyond it a new connection is answered `503` with `Retry-After` and
    /// closed, so a flood of sockets runs into this bound before the
    /// process's file descriptor limit (which would stall accepting).
    pub const MAX_CONNECTIONS: usize = 4_096;
    /// How long the server waits after refusing a connection over
    /// [`MAX_CONNECTIONS`] for its `503` to be written.
    pub const REFUSAL_WRITE_TIMEOUT_MS: u64 = 1_000;
    /// Veche's own HTTP clients (internal RPC, Raft, leader forwarding)
    /// drop a pooled connection idle this long, well before the server's
    /// [`HEADER_READ_TIMEOUT_MS`] closes it, so a request never races the
    /// server's close on a reused connection.
    pub const CLIENT_POOL_IDLE_MS: u64 = 5_000;
    /// `POST /api/rooms`: each room is a Raft write kept forever.
    pub const CREATE_ROOM: Rate = Rate {
        burst: 10,
        per_second: 0.2,
    };
    /// `POST /api/rooms/{id}/join`: a quorum read and a token signature.
    /// Generous, since a meeting's guests may share one NAT address.
    pub const JOIN: Rate = Rate {
        burst: 60,
        per_second: 2.0,
    };
    /// `GET /api/rooms/{id}/messages` and room lookups: quorum reads.
    pub const READ: Rate = Rate {
        burst: 60,
        per_second: 5.0,
    };
    /// `GET /auth/oidc/login` and `/auth/oidc/callback`: each is a round
    /// trip to the sign-in provider (the callback also a token exchange and
    /// a Raft write), so a client cannot make Veche hammer the provider.
    /// A person signs in a few times a day; a shared NAT, a few dozen.
    pub const SSO: Rate = Rate {
        burst: 30,
        per_second: 0.5,
    };
    /// How long a single sign-on attempt may take, from the redirect to the
    /// provider to its callback: the sealed pending-login cookie expires
    /// after this.
    pub const SSO_LOGIN_TTL_MS: u64 = 10 * 60 * 1000;
    /// Time limit of each request to the sign-in provider (discovery, the
    /// code exchange), well inside [`REQUEST_TIMEOUT_MS`].
    pub const SSO_PROVIDER_TIMEOUT_MS: u64 = 5_000;
    /// Account requests (`/api/me`, sign-out, profile): cheap reads and
    /// rare writes, but each a quorum read.
    pub const ACCOUNT: Rate = Rate {
        burst: 30,
        per_second: 2.0,
    };
    /// `POST /api/profile/avatar`: each upload writes up to 1 MiB to the
    /// avatar store and a Raft entry; a person changes their picture a few
    /// times at most.
    pub const AVATAR: Rate = Rate {
        burst: 5,
        per_second: 0.1,
    };
    /// Guest passes (`/api/rooms/{slug}/passes`): an owner creating,
    /// listing and revoking a handful; each create is a Raft write.
    pub const PASSES: Rate = Rate {
        burst: 20,
        per_second: 1.0,
    };
    /// Client addresses remembered per limiter; the least recently seen are
    /// forgotten first, so a spray of addresses cannot grow memory.
    pub const MAX_TRACKED_ADDRESSES: usize = 65_536;
}

/// Accounts and sessions.
pub mod accounts {
    /// How long a session cookie signs its browser in. Thirty days, as
    /// people expect of a work tool; "Sign out everywhere" ends them early.
    pub const SESSION_TTL_MS: u64 = 30 * 24 * 3600 * 1000;
    /// Longest email address accepted (RFC 5321's path limit).
    pub const MAX_EMAIL_BYTES: usize = 254;
    /// Shortest password accepted, in characters. NIST SP 800-63B asks
    /// for at least 8; 10 leaves a little margin for the strength check
    /// to work with, and is still short enough for a memorable phrase.
    /// Length alone is not enough: the strength estimate must also pass
    /// ([`MIN_PASSWORD_SCORE`]).
    pub const MIN_PASSWORD_CHARS: usize = 10;
    /// Longest password accepted, in bytes. Hashing and the strength
    /// estimate take time that grows with the length, so an unbounded
    /// password is a way to make the server work; 256 bytes holds any
    /// passphrase or generated password a person uses.
    pub const MAX_PASSWORD_BYTES: usize = 256;
    /// Lowest zxcvbn score (0 to 4) a new password must reach. 3 is "safely
    /// unguessable: moderate protection from offline slow-hash attacks"
    /// (about 10^8 guesses and more), which is what an argon2id hash that
    /// leaked would face.
    pub const MIN_PASSWORD_SCORE: u8 = 3;
    /// Failed sign-ins for one account within [`LOGIN_FAILURE_WINDOW_MS`]
    /// before that account refuses further attempts (even with the right
    /// password) until the oldest failure is older than the window. Five
    /// is enough for a person mistyping; per node of a cluster (each
    /// control-plane node counts its own), so an online guesser gets at
    /// most five guesses per node per window.
    pub const LOGIN_FAILURES_PER_ACCOUNT: usize = 5;
    /// Failed sign-ins from one client address (an IPv6 /64) within the
    /// window, whatever account they name, before that address is refused:
    /// bounds a guesser who sprays one common password over many accounts.
    pub const LOGIN_FAILURES_PER_ADDRESS: usize = 20;
    /// The window over which failed sign-ins are counted: 15 minutes.
    pub const LOGIN_FAILURE_WINDOW_MS: u64 = 15 * 60 * 1000;
    /// Accounts and addresses whose failures a node remembers; the least
    /// recently failing are forgotten first, so a spray of names cannot
    /// grow memory.
    pub const MAX_TRACKED_LOGIN_KEYS: usize = 65_536;
    /// Password hashes (argon2id, 19 MiB each) computed at once per node;
    /// more wait their turn. Bounds the memory a burst of sign-ins takes.
    pub const MAX_CONCURRENT_HASHES: usize = 4;
    /// Largest avatar image accepted, in bytes: 1 MiB.
    pub const MAX_AVATAR_BYTES: usize = 1024 * 1024;
    /// Largest avatar width or height, in pixels. A small file can declare
    /// an enormous image that a browser would then decode; this refuses it.
    pub const MAX_AVATAR_PIXELS: usize = 4096;
}

/// Room covers ([`crate::cover`]): an image, a title and a description a
/// room's owner sets, shown before joining and behind video-less tiles.
pub mod covers {
    use super::Rate;

    /// Largest cover image accepted, in bytes: 2 MiB.
    pub const MAX_BYTES: usize = 2 * 1024 * 1024;
    /// Largest width or height, in pixels. The image is decoded in full on
    /// the server (RGBA: at most 64 MiB at this size) and by every browser
    /// that shows it; a small file declaring a huge image is refused before
    /// any pixel is decoded.
    pub const MAX_SIDE: u32 = 4096;
    /// Smallest width or height, in pixels: a cover fills a page's header
    /// and a tile, and a thumbnail-sized image would show as a blur.
    pub const MIN_SIDE: u32 = 16;
    /// Longest cover title, in chars.
    pub const MAX_TITLE_CHARS: usize = 100;
    /// Longest cover description, in chars.
    pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
    /// Images decoded at once per control-plane node (each on a blocking
    /// thread, up to 64 MiB); more wait their turn.
    pub const MAX_CONCURRENT_DECODES: usize = 2;
    /// Cover writes (`PUT`/`DELETE /api/rooms/{slug}/cover...`) per client
    /// address: each is a Raft write, an image upload also a decode and up
    /// to 2 MiB to the store. An owner tries a few images and edits the
    /// text a few times; refused uploads count too.
    pub const WRITE: Rate = Rate {
        burst: 30,
        per_second: 0.5,
    };
}

/// Guest passes (`crate::pass`).
pub mod passes {
    /// Longest pass label, in chars.
    pub const MAX_LABEL_CHARS: usize = 100;
    /// Longest validity window: a year (and a day, for a leap year). A
    /// pass is for a visit, not a membership; longer needs an account.
    pub const MAX_WINDOW_MS: u64 = 366 * 24 * 3600 * 1000;
    /// Passes one room may hold, revoked and expired ones included, so that
    /// one owner cannot grow the replicated state without bound.
    pub const MAX_PER_ROOM: usize = 500;
}

/// Meeting statistics: the media nodes' participant events and the admin
/// view's routes.
pub mod stats {
    use super::Rate;

    /// Participant events a media node keeps while the control plane does
    /// not acknowledge them (about 200 bytes each). When full, the oldest
    /// is dropped and counted (`veche_node_participant_events_dropped_total`):
    /// a control plane down for long loses the oldest history first, and a
    /// node never runs out of memory for it.
    pub const EVENT_QUEUE: usize = 10_000;
    /// Most events in one report ([`crate::stats::RPC_NODE_EVENTS`]): one
    /// Raft entry each, well under [`MAX_EVENTS_BODY_BYTES`].
    pub const MAX_EVENTS_PER_BATCH: usize = 500;
    /// Largest body the control plane accepts on the events route.
    pub const MAX_EVENTS_BODY_BYTES: usize = 512 * 1024;
    /// How often a node reports at most, in milliseconds: the events of
    /// this window share one report, hence one Raft entry.
    pub const REPORT_INTERVAL_MS: u64 = 500;
    /// After a failed report, the wait before the next one doubles from
    /// [`REPORT_INTERVAL_MS`] up to this.
    pub const REPORT_MAX_BACKOFF_MS: u64 = 5_000;
    /// The admin view's routes (`/api/admin/overview`, meetings, exports)
    /// and a user's own history: each a quorum read over many rows.
    pub const ADMIN_VIEW: Rate = Rate {
        burst: 30,
        per_second: 2.0,
    };
    /// Most participant sessions listed for one meeting (detail, CSV).
    pub const MAX_MEETING_PARTICIPANTS: usize = 5_000;
    /// Most chat messages in one meeting's chat export.
    pub const MAX_CHAT_EXPORT: usize = 10_000;
}

/// Recording (`crate::recording`): the recorder on the media node, its
/// reports to the control plane, and the recordings routes. Starting and
/// stopping is a `moderate` action, bounded by [`signal::MODERATE`].
pub mod recording {
    use super::Rate;

    /// A file's segment length: the node cuts a segment at the first
    /// cluster boundary after this much media, and asks the publisher for
    /// a keyframe then, so a new cluster starts soon. A node that dies
    /// loses at most the segment in progress. (A file with no video has
    /// clusters of up to 32 s, the muxer's limit, and segments as long.)
    pub const SEGMENT_MS: u64 = 10_000;
    /// How long the recorder's jitter buffer waits for a late packet
    /// before it gives up on it, in milliseconds: long enough for a NACKed
    /// retransmission on a good link, short enough to keep memory small.
    pub const JITTER_MS: u64 = 200;
    /// Packets queued from the forwarding path to one file's recorder
    /// before the newest are dropped (counted): a stalled disk loses its
    /// own packets rather than slowing forwarding.
    pub const PACKET_QUEUE: usize = 1_024;
    /// Files recorded at once on one node; more are refused (logged and
    /// counted) rather than risking the node's memory and disk.
    pub const MAX_FILES_PER_NODE: usize = 256;
    /// How long after a recording stops the control plane waits for the
    /// last report (`done`) of each node that hosted the room, in
    /// milliseconds. A node says done within seconds (it finalizes its
    /// files and uploads the last segments); one that never does (alive but
    /// without recording storage, or a bug) would otherwise keep the
    /// recording "finishing" forever. Long enough for a slow upload of the
    /// last segments, short enough that viewers are not kept waiting.
    pub const DONE_WAIT_MS: u64 = 60_000;
    /// Files (across all its runs) one recording may hold: a meeting of
    /// 60 people who each rejoin a few times stays far below.
    pub const MAX_FILES_PER_RECORDING: usize = 1_000;
    /// Segments one file may hold: 10 s each, so 24 hours.
    pub const MAX_SEGMENTS_PER_FILE: usize = 8_640;
    /// Files in one report ([`crate::recording::RPC_RECORDING_REPORT`]).
    pub const MAX_FILES_PER_REPORT: usize = 64;
    /// Segments per file in one report.
    pub const MAX_SEGMENTS_PER_REPORT: usize = 64;
    /// Largest report body the control plane accepts.
    pub const MAX_REPORT_BODY_BYTES: usize = 256 * 1024;
    /// Longest display name carried in a report, in chars (the join
    /// token's limit).
    pub const MAX_NAME_CHARS: usize = 64;
    /// Longest a share link may work, in hours (30 days).
    pub const SHARE_MAX_HOURS: u32 = 720;
    /// Recordings in one page of the list (also the default).
    pub const PAGE: usize = 50;
    /// Default retention: recordings older than this many days are deleted
    /// with their objects (`[recordings] retention_days`; 0 keeps them).
    pub const DEFAULT_RETENTION_DAYS: u32 = 30;
    /// Reads of the recordings routes (list, one, file ranges) per client
    /// address: a player seeking fetches ranges of several files at once.
    pub const READ: Rate = Rate {
        burst: 200,
        per_second: 20.0,
    };
    /// Writes (delete, share) per client address.
    pub const WRITE: Rate = Rate {
        burst: 20,
        per_second: 0.5,
    };
    /// One-file exports per client address: each runs ffmpeg over the
    /// whole recording.
    pub const EXPORT: Rate = Rate {
        burst: 2,
        per_second: 1.0 / 60.0,
    };
}

/// End-to-end encryption (`crate::e2ee`): the MLS handshake messages a
/// browser sends through its media node, which the control plane orders
/// without reading, and sealed chat. Sizes are of the base64url text as
/// it arrives, so they bound what the node buffers and relays.
pub mod e2ee {
    use super::Rate;

    /// Longest `key_package` (base64url). An MLS key package with an
    /// X25519/Ed25519 suite and Veche's credential is under 1 KB.
    pub const MAX_KEY_PACKAGE_BYTES: usize = 8 * 1024;
    /// Longest `commit` (base64url). A commit adding or removing a few
    /// members with a path update is a few KB in a room of 60.
    pub const MAX_COMMIT_BYTES: usize = 64 * 1024;
    /// Longest `welcome` (base64url). It carries the ratchet tree: about
    /// 500 bytes per member, so a room of 100 stays near 70 KB.
    pub const MAX_WELCOME_BYTES: usize = 160 * 1024;
    /// Most participants one commit may add or remove.
    pub const MAX_LISTED: usize = 100;
    /// `e2ee_key_package`: one on join, then a retry every
    /// [`KEY_PACKAGE_RETRY_MS`] until welcomed, and one per reconnect.
    pub const KEY_PACKAGE: Rate = Rate {
        burst: 5,
        per_second: 0.5,
    };
    /// `e2ee_commit`: the committer's debounce keeps it to one per change
    /// batch; the burst covers a committer catching up after a wave of
    /// joins.
    pub const COMMIT: Rate = Rate {
        burst: 20,
        per_second: 5.0,
    };
    /// How often a browser waiting to be welcomed sends its key package
    /// again, in milliseconds: covers a relay or node lost in between and
    /// a group whose last member left (the control plane then lets the
    /// waiter found a new group).
    pub const KEY_PACKAGE_RETRY_MS: u64 = 4_000;
    /// Handshake messages of one session waiting for the control plane
    /// on a media node; one more is refused with `rate_limited`.
    pub const QUEUE: usize = 16;
    /// Longest sealed chat message (base64url envelope, in bytes): the
    /// plain limit of 4000 characters at up to 4 UTF-8 bytes each, plus
    /// nonce and tag, in base64.
    pub const MAX_SEALED_CHAT_BYTES: usize = 22 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_budget_admits_a_well_behaved_client() {
        use signal::*;
        // What the web client does in its busiest second: join with a
        // dozen candidates, publish, toggle a device, send a chat line.
        for (rate, busiest_second) in [
            (MEDIA, 4),
            (OFFER, 3),
            (ANSWER, 3),
            (CANDIDATE, 40),
            (CHAT, 5),
            (PING, 1),
            (PEER_SIGNAL, 40),
            (P2P_STATE, 2),
        ] {
            let mut b = rate.bucket(0);
            for i in 0..busiest_second {
                assert_eq!(b.try_take(0), Ok(()), "{rate:?} refused frame {i}");
            }
        }
    }
}
