//! `veche.toml`: every option with its default in code, unknown keys
//! rejected so a typo fails loudly instead of being ignored. The commented
//! sample is `deploy/veche.sample.toml`; keep the two in step (a test
//! parses the sample).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listener and storage.
    pub server: ServerConfig,
    /// Control-plane options.
    pub control_plane: ControlPlaneSection,
    /// Media-node options.
    pub media: MediaSection,
}

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTP listen address. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Directory for the Raft log and state. Default `./veche-data`.
    pub data_dir: PathBuf,
    /// Base URL in room links. Default: the `Host` the request came in on.
    pub public_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./veche-data"),
            public_url: None,
        }
    }
}

/// `[control_plane]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlPlaneSection {
    /// Raft node id. Default 1.
    pub node_id: u64,
    /// Join-token lifetime in seconds. Default 60.
    pub token_ttl_secs: u64,
    /// Shared secret for internal RPC. Default: random at each start,
    /// which is right for `veche serve` where nothing else needs it.
    pub cluster_secret: Option<String>,
}

impl Default for ControlPlaneSection {
    fn default() -> Self {
        ControlPlaneSection {
            node_id: 1,
            token_ttl_secs: 60,
            cluster_secret: None,
        }
    }
}

/// `[media]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaSection {
    /// Media node id. Default 1.
    pub node_id: u64,
    /// IP the media (UDP) sockets bind to. Default: the listen IP, so a
    /// loopback listener gives loopback media and 0.0.0.0 gives every
    /// interface.
    pub rtc_ip: Option<std::net::IpAddr>,
    /// Seconds a dropped participant keeps their seat as "reconnecting".
    /// Default 15.
    pub reconnect_grace_secs: u64,
    /// STUN/TURN servers handed to browsers. Default none (LAN).
    pub ice_servers: Vec<IceServerConfig>,
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            node_id: 1,
            rtc_ip: None,
            reconnect_grace_secs: 15,
            ice_servers: Vec::new(),
        }
    }
}

/// `[[media.ice_servers]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServerConfig {
    /// `stun:`/`turn:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default)]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default)]
    pub credential: Option<String>,
}

impl Config {
    /// Reads and parses a config file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("in {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_config_parses() {
        let text = include_str!("../deploy/veche.sample.toml");
        let c: Config = toml::from_str(text).expect("sample config parses");
        assert_eq!(c.server.listen.port(), 8080);
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = toml::from_str::<Config>("[server]\nlisten_addr = \"1.2.3.4:5\"\n").unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[test]
    fn an_empty_file_means_all_defaults() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.media.reconnect_grace_secs, 15);
        assert_eq!(c.control_plane.token_ttl_secs, 60);
    }
}
