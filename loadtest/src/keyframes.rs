//! An interceptor that lets keyframe requests (PLI, FIR) reach a bot's
//! publisher. webrtc-rs's interceptor chain ends in a no-op that swallows
//! every RTCP packet not marked `DeliverToApplication`; without this, a bot
//! would never see the node ask for a keyframe, and a subscriber whose
//! decoder lost sync would wait for the next periodic one.
//!
//! The media node has the same interceptor for its subscribers' requests;
//! the bot keeps its own copy so that the load harness does not depend on
//! the node crate.

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use std::collections::VecDeque;
use std::time::Instant;

/// Marks PLI and FIR packets for delivery to the application, and passes
/// everything through unchanged.
#[derive(Default)]
pub(crate) struct KeyframeRequests {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

fn asks_for_a_keyframe(msg: &TaggedPacket) -> bool {
    match &msg.message.packet {
        Packet::Rtcp(packets) => packets.iter().any(|p| {
            let p = p.as_any();
            p.is::<PictureLossIndication>() || p.is::<FullIntraRequest>()
        }),
        _ => false,
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if asks_for_a_keyframe(&msg) {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::AttributedPacket;
    use rtc::rtcp::receiver_report::ReceiverReport;

    fn tagged(packet: Box<dyn rtc::rtcp::Packet>) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: Default::default(),
            message: AttributedPacket::new(Packet::Rtcp(vec![packet])),
        }
    }

    #[test]
    fn a_keyframe_request_reaches_the_bot_and_a_receiver_report_is_left_alone() {
        let mut k = KeyframeRequests::default();
        let pli = PictureLossIndication {
            sender_ssrc: 1,
            media_ssrc: 2,
        };
        k.handle_read(tagged(Box::new(pli))).unwrap();
        k.handle_read(tagged(Box::new(ReceiverReport::default())))
            .unwrap();
        let delivered = |p: TaggedPacket| p.message.has(&Attribute::DeliverToApplication);
        assert!(delivered(k.poll_read().expect("the PLI passes")));
        assert!(!delivered(k.poll_read().expect("the report passes")));
        assert!(k.poll_read().is_none());
    }
}
