//! Who may offer when, per participant connection, without I/O.
//!
//! The browser makes the first offer (its own microphone and camera). After
//! that, the node offers whenever the set of tracks the participant receives
//! changes, and the browser offers when it adds or removes a track it sends
//! (screen sharing). The node is the "impolite" peer of perfect
//! negotiation: while its own offer is outstanding it refuses a browser
//! offer, and the browser (polite) rolls back, answers, and offers again.
//!
//! At most one node offer is in flight; changes that arrive meanwhile set a
//! "pending" flag and produce exactly one follow-up offer. This is what kept
//! a prototype free of glare and of `negotiationneeded` storms.

/// What the edge must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do now.
    Idle,
    /// Create an offer, set it locally and send it to the browser.
    SendOffer,
    /// Apply the browser's offer, answer it and send the answer.
    AcceptOffer,
    /// Refuse the browser's offer with `invalid_state`; the browser retries
    /// after answering ours.
    RejectOffer,
    /// Apply the browser's answer.
    AcceptAnswer,
    /// An answer with no offer outstanding: reply with an error.
    RejectAnswer,
}

/// Negotiation state of one peer connection.
#[derive(Clone, Debug, Default)]
pub struct Negotiator {
    /// The browser's first offer has been answered; before that the node
    /// never offers, because there is no transport to offer on.
    started: bool,
    /// A node offer was sent and its answer has not arrived.
    offer_in_flight: bool,
    /// Tracks changed since the last node offer was created.
    pending: bool,
}

impl Negotiator {
    /// A fresh connection awaiting the browser's first offer.
    pub fn new() -> Self {
        Self::default()
    }

    /// True while a node offer awaits its answer.
    pub fn offer_in_flight(&self) -> bool {
        self.offer_in_flight
    }

    /// The set of tracks to send changed (a subscribe or unsubscribe).
    pub fn tracks_changed(&mut self) -> Step {
        self.pending = true;
        self.next()
    }

    /// A browser offer arrived.
    pub fn client_offer(&mut self) -> Step {
        if self.offer_in_flight {
            Step::RejectOffer
        } else {
            Step::AcceptOffer
        }
    }

    /// The edge finished answering a browser offer (successfully or not).
    pub fn client_offer_answered(&mut self) -> Step {
        self.started = true;
        self.next()
    }

    /// A browser answer arrived.
    pub fn client_answer(&mut self) -> Step {
        if self.offer_in_flight {
            Step::AcceptAnswer
        } else {
            Step::RejectAnswer
        }
    }

    /// The edge applied the browser's answer (or gave up on it).
    pub fn answer_applied(&mut self) -> Step {
        self.offer_in_flight = false;
        self.next()
    }

    /// The edge is about to create an offer: everything pending so far is
    /// included in it.
    pub fn offer_sent(&mut self) {
        self.offer_in_flight = true;
        self.pending = false;
    }

    /// Creating or sending the offer failed; allow a later retry.
    pub fn offer_failed(&mut self) {
        self.offer_in_flight = false;
        self.pending = true;
    }

    fn next(&self) -> Step {
        if self.started && self.pending && !self.offer_in_flight {
            Step::SendOffer
        } else {
            Step::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_never_offers_before_the_browsers_first_offer_is_answered() {
        let mut n = Negotiator::new();
        assert_eq!(n.tracks_changed(), Step::Idle);
        assert_eq!(n.client_offer(), Step::AcceptOffer);
        // The subscriptions that piled up are offered right after.
        assert_eq!(n.client_offer_answered(), Step::SendOffer);
    }

    #[test]
    fn changes_during_an_outstanding_offer_produce_exactly_one_follow_up() {
        let mut n = Negotiator::new();
        n.client_offer();
        n.client_offer_answered();
        assert_eq!(n.tracks_changed(), Step::SendOffer);
        n.offer_sent();
        assert_eq!(n.tracks_changed(), Step::Idle);
        assert_eq!(n.tracks_changed(), Step::Idle);
        assert_eq!(n.client_answer(), Step::AcceptAnswer);
        assert_eq!(n.answer_applied(), Step::SendOffer);
        n.offer_sent();
        assert_eq!(n.client_answer(), Step::AcceptAnswer);
        assert_eq!(n.answer_applied(), Step::Idle);
    }

    #[test]
    fn a_browser_offer_during_a_node_offer_is_refused_as_glare() {
        let mut n = Negotiator::new();
        n.client_offer();
        n.client_offer_answered();
        n.tracks_changed();
        n.offer_sent();
        assert_eq!(n.client_offer(), Step::RejectOffer);
        assert_eq!(n.client_answer(), Step::AcceptAnswer);
        n.answer_applied();
        assert_eq!(n.client_offer(), Step::AcceptOffer);
    }

    #[test]
    fn an_unexpected_answer_is_refused_and_a_failed_offer_is_retried() {
        let mut n = Negotiator::new();
        assert_eq!(n.client_answer(), Step::RejectAnswer);
        n.client_offer();
        n.client_offer_answered();
        n.tracks_changed();
        n.offer_sent();
        n.offer_failed();
        assert!(!n.offer_in_flight());
        assert_eq!(n.client_offer_answered(), Step::SendOffer);
    }
}

/// The `msid` track ids of the media sections in which `sdp`'s author
/// sends (direction `sendrecv` or `sendonly`, port not 0).
///
/// After applying a browser offer, a published track whose msid is no
/// longer here was removed by the browser (it stopped screen sharing), and
/// the node unpublishes it. webrtc-rs does not signal that itself.
pub fn sending_track_ids(sdp: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut section: Option<(bool, bool, Option<String>)> = None; // (rejected, sends, msid track)
    let flush = |s: &mut Option<(bool, bool, Option<String>)>,
                 out: &mut std::collections::BTreeSet<String>| {
        if let Some((rejected, sends, Some(track))) = s.take() {
            if !rejected && sends {
                out.insert(track);
            }
        }
    };
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            flush(&mut section, &mut out);
            let rejected = m.split_whitespace().nth(1) == Some("0");
            section = Some((rejected, true, None));
        } else if let Some(s) = section.as_mut() {
            match line {
                "a=sendrecv" | "a=sendonly" => s.1 = true,
                "a=recvonly" | "a=inactive" => s.1 = false,
                _ => {
                    if let Some(msid) = line.strip_prefix("a=msid:") {
                        if let Some(track) = msid.split_whitespace().nth(1) {
                            s.2 = Some(track.to_owned());
                        }
                    }
                }
            }
        }
    }
    flush(&mut section, &mut out);
    out
}

#[cfg(test)]
mod sdp_tests {
    use super::sending_track_ids;

    #[test]
    fn only_sending_unrejected_sections_count() {
        let sdp = "v=0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\na=msid:s1 mic\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=sendonly\r\na=msid:s1 cam\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=recvonly\r\na=msid:s2 screen\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=sendrecv\r\na=msid:s3 old\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:4\r\na=sendrecv\r\n";
        let ids: Vec<String> = sending_track_ids(sdp).into_iter().collect();
        assert_eq!(ids, vec!["cam".to_string(), "mic".to_string()]);
    }
}
