//! Which codecs the node accepts and forwards: Opus for audio, VP8 for
//! video, nothing else.
//!
//! An SFU forwards packets without transcoding, so every subscriber must
//! be able to decode what a publisher sends. With one codec per kind that
//! every browser supports, that holds by construction: a publisher can
//! only publish VP8 video (its offer's other video codecs are not
//! negotiated), and the node only ever offers VP8 to subscribers. An
//! H264-only publisher would otherwise be forwarded to subscribers that
//! never offered H264. A later per-room codec choice (VP9, AV1) starts
//! here.
//!
//! [`media_engine`] builds the engine every peer connection uses;
//! [`check_offer`] tells a publisher, without I/O, when a section of its
//! offer has no codec the node accepts, since webrtc-rs rejects such a
//! section silently.

use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};

/// The codecs the node accepts, for error messages and docs.
pub const ACCEPTED: &str = "Opus audio and VP8 video";

/// A media engine with Opus (payload type 111) and VP8 (96, with its RTX
/// repair stream on 97) registered, and nothing else.
pub fn media_engine() -> Result<MediaEngine, webrtc::error::Error> {
    let mut me = MediaEngine::default();
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48_000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![
                    feedback("goog-remb", ""),
                    feedback("ccm", "fir"),
                    feedback("nack", ""),
                    feedback("nack", "pli"),
                ],
            },
            payload_type: 96,
        },
        RtpCodecKind::Video,
    )?;
    // Browsers drop RTX for a primary codec that has none paired.
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_RTX.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: "apt=96".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: 97,
        },
        RtpCodecKind::Video,
    )?;
    Ok(me)
}

/// The media sections of a browser offer that send media in no codec the
/// node accepts, as `"<kind> section <mid>: <codecs offered>"`, empty when
/// every sending section can be accepted. Sections that only receive are
/// not checked: what the node sends is always VP8 or Opus.
pub fn check_offer(sdp: &str) -> Vec<String> {
    struct Section {
        kind: String,
        mid: String,
        rejected: bool,
        sends: bool,
        codecs: Vec<String>,
    }
    let mut sections: Vec<Section> = Vec::new();
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_whitespace();
            let kind = parts.next().unwrap_or("").to_owned();
            let rejected = parts.next() == Some("0");
            sections.push(Section {
                mid: sections.len().to_string(),
                kind,
                rejected,
                sends: true,
                codecs: Vec::new(),
            });
        } else if let Some(s) = sections.last_mut() {
            match line {
                "a=recvonly" | "a=inactive" => s.sends = false,
                "a=sendrecv" | "a=sendonly" => s.sends = true,
                _ => {
                    if let Some(mid) = line.strip_prefix("a=mid:") {
                        s.mid = mid.to_owned();
                    } else if let Some(map) = line.strip_prefix("a=rtpmap:") {
                        if let Some(name) = map
                            .split_whitespace()
                            .nth(1)
                            .and_then(|n| n.split('/').next())
                        {
                            s.codecs.push(name.to_owned());
                        }
                    }
                }
            }
        }
    }
    sections
        .into_iter()
        .filter(|s| !s.rejected && s.sends)
        .filter_map(|s| {
            let wanted = match s.kind.as_str() {
                "audio" => "opus",
                "video" => "VP8",
                _ => return None,
            };
            if s.codecs.iter().any(|c| c.eq_ignore_ascii_case(wanted)) {
                return None;
            }
            let mut offered: Vec<String> = s
                .codecs
                .into_iter()
                .filter(|c| !["rtx", "red", "ulpfec", "flexfec-03"].contains(&c.as_str()))
                .collect();
            offered.dedup();
            Some(format!(
                "{} section {}: {}",
                s.kind,
                s.mid,
                if offered.is_empty() {
                    "no codecs".to_owned()
                } else {
                    offered.join(", ")
                }
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROWSER: &str = "v=0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=mid:0\r\na=sendrecv\r\n\
a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102\r\na=mid:1\r\na=sendrecv\r\n\
a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=rtpmap:102 H264/90000\r\n";

    #[test]
    fn a_browser_offering_vp8_and_opus_is_accepted_whole() {
        assert!(check_offer(BROWSER).is_empty());
    }

    #[test]
    fn an_h264_only_publisher_is_told_its_video_is_not_accepted() {
        let sdp = "v=0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102 103\r\na=mid:1\r\na=sendonly\r\n\
a=rtpmap:102 H264/90000\r\na=rtpmap:103 rtx/90000\r\n";
        assert_eq!(check_offer(sdp), vec!["video section 1: H264".to_string()]);
    }

    #[test]
    fn receive_only_and_rejected_sections_are_not_checked() {
        let sdp = "v=0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:0\r\na=recvonly\r\na=rtpmap:102 H264/90000\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 102\r\na=mid:1\r\na=sendrecv\r\na=rtpmap:102 H264/90000\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";
        assert!(check_offer(sdp).is_empty());
    }

    #[test]
    fn the_engine_registers_only_opus_and_vp8() {
        assert!(media_engine().is_ok());
    }
}
