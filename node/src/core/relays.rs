//! Which remote tracks are relayed to this node: exactly those some local
//! member receives, each from its publisher's node.

use super::{Action, Home, RoomCore};
use std::collections::BTreeMap;
use veche_protocol::{NodeId, TrackId};

impl RoomCore {
    /// Brings the set of relayed tracks in line with who receives what:
    /// a remote track is relayed exactly while some local member receives
    /// it. Starts go first (the edge needs the relayed track before it can
    /// subscribe anyone to it), stops last.
    pub(super) fn with_relays(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let mut wanted: BTreeMap<TrackId, NodeId> = BTreeMap::new();
        for (track, publisher) in &self.tracks {
            let Some(Home::Remote(node)) = self.members.get(publisher).map(|m| m.home) else {
                continue;
            };
            if self.members.values().any(|m| m.receiving.contains(track)) {
                wanted.insert(track.clone(), node);
            }
        }
        let mut out = Vec::with_capacity(actions.len() + 2);
        for (track, node) in &wanted {
            if self.relayed.get(track) != Some(node) {
                out.push(Action::RelayStart {
                    track: track.clone(),
                    from: *node,
                });
            }
        }
        out.extend(actions);
        for (track, node) in &self.relayed {
            if wanted.get(track) != Some(node) {
                out.push(Action::RelayStop {
                    track: track.clone(),
                    from: *node,
                });
            }
        }
        // A start for a track that moved to another node needs the stop of
        // the old relay first; the edge keys relays by (track, node), so
        // the order between the two does not matter to it.
        self.relayed = wanted;
        out
    }
}
