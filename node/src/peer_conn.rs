//! The webrtc-rs connection a peer actor drives: its settings, and the
//! handler that turns its events into the actor's commands. Kept apart
//! from the actor (`peer.rs`) so that file stays about negotiation and
//! tracks.

use crate::interceptor::KeyframeRequestForwarder;
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, info};
use veche_protocol::ParticipantId;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceConnectionState,
    RTCIceGatheringState, RTCPeerConnectionState,
};

/// Where RTP sockets bind and what the connection needs to know.
#[derive(Clone, Debug)]
pub struct RtcConfig {
    /// IP address the per-connection UDP sockets bind to. An unspecified
    /// address (0.0.0.0) makes webrtc-rs gather every non-loopback
    /// interface; a loopback address gives loopback-only candidates.
    pub bind_ip: IpAddr,
}

/// What the connection tells its actor.
pub(crate) enum ConnEvent {
    /// The connection is up.
    Connected,
    /// ICE (re)connected, after a restart too.
    IceConnected,
    /// A track arrived from the browser.
    RemoteTrack(Arc<dyn TrackRemote>),
}

/// The connection's events, handed to its actor: the handler runs on the
/// connection's own task, which must not do the actor's work.
pub(crate) struct Handler {
    /// Queues an event for the actor.
    pub(crate) events: Box<dyn Fn(ConnEvent) + Send + Sync>,
    /// Set once ICE gathering completed.
    pub(crate) gathered: watch::Sender<bool>,
    /// True while the connection is up (DTLS done): down tracks hold their
    /// packets until then, or the first keyframe would be lost.
    pub(crate) connected: watch::Sender<bool>,
    /// For the logs.
    pub(crate) participant: ParticipantId,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        info!(participant = %self.participant, "peer connection {state}");
        let _ = self
            .connected
            .send(state == RTCPeerConnectionState::Connected);
        if state == RTCPeerConnectionState::Connected {
            (self.events)(ConnEvent::Connected);
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        debug!(participant = %self.participant, "ICE {state}");
        if matches!(
            state,
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
        ) {
            (self.events)(ConnEvent::IceConnected);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        (self.events)(ConnEvent::RemoteTrack(track));
    }
}

/// Builds a peer connection for one participant.
pub(crate) async fn build_pc(
    rtc: &RtcConfig,
    handler: Arc<Handler>,
) -> Result<Arc<dyn PeerConnection>, webrtc::error::Error> {
    let mut me = crate::codecs::media_engine()?;
    let registry = register_default_interceptors(Registry::new(), &mut me)?
        .with(Slot::from(14_000), KeyframeRequestForwarder::default());
    let se = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        // Accept the browser's peer-reflexive candidate at once instead of
        // waiting for a better pair that will never come: halves join time.
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_include_loopback_candidate(rtc.bind_ip.is_loopback())
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(me)
        .with_setting_engine(se)
        .with_interceptor_registry(registry)
        .with_handler(handler as Arc<dyn PeerConnectionEventHandler>)
        .with_udp_addrs(vec![format!("{}:0", rtc.bind_ip)])
        .build()
        .await?;
    Ok(Arc::new(pc))
}
