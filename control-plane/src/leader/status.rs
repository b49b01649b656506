//! This node's view of the cluster: members, leader, replication and
//! (on the leader) media-node liveness.

use crate::ControlPlane;
use std::time::Instant;
use veche_protocol::admin::{ClusterStatus, MemberStatus};

impl ControlPlane {
    /// Base URLs of every control-plane node, the leader first, for media
    /// nodes to fail over between.
    pub(crate) fn control_plane_urls(&self) -> Vec<String> {
        let members = self.store.member_addrs();
        let leader = self.store.leader().map(|(id, _)| id);
        let mut urls: Vec<(bool, String)> = members
            .into_iter()
            .map(|(id, addr)| (Some(id) != leader, addr))
            .collect();
        urls.sort();
        urls.into_iter().map(|(_, a)| a).collect()
    }

    /// This node's view of the cluster; on the leader it includes
    /// replication progress and media-node liveness.
    pub(crate) fn status(&self) -> ClusterStatus {
        let m = self.store.raft().metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
        let matched = |id: u64| {
            m.replication
                .as_ref()
                .and_then(|r| r.get(&id).cloned().flatten())
                .map(|l| l.index)
        };
        let mut members: Vec<MemberStatus> = membership
            .nodes()
            .map(|(id, n)| MemberStatus {
                id: *id,
                addr: n.addr.clone(),
                voter: voters.contains(id),
                matched_index: matched(*id),
            })
            .collect();
        members.sort_by_key(|s| (!s.voter, s.id));
        let leader = m
            .current_leader
            .and_then(|id| members.iter().find(|s| s.id == id).cloned());
        let is_leader = m.state == openraft::ServerState::Leader;
        let media_nodes = if is_leader {
            self.store.local().media_nodes().ok().map(|nodes| {
                let now = Instant::now();
                let mut l = self.liveness.lock().expect("lock poisoned");
                l.observe_term(m.current_term, now);
                l.status(&nodes, now)
            })
        } else {
            None
        };
        ClusterStatus {
            node_id: self.config.node_id,
            state: format!("{:?}", m.state),
            term: m.current_term,
            leader,
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|l| l.index),
            members,
            media_nodes,
        }
    }
}
