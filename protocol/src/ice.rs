//! The ICE candidate both the SFU's signalling (`signal.rs`) and the
//! direct path's (`p2p.rs`) carry.

use serde::{Deserialize, Serialize};

/// A trickle ICE candidate, shaped like the browser's `RTCIceCandidateInit`
/// so a client can pass it straight through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// The `candidate:` attribute line (without `a=`).
    pub candidate: String,
    /// The media section id.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// The media section index.
    #[serde(default)]
    pub sdp_m_line_index: Option<u16>,
    /// The ICE username fragment.
    #[serde(default)]
    pub username_fragment: Option<String>,
}
