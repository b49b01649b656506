//! `veche.toml`: every option with its default in code, unknown keys
//! rejected so a typo fails loudly instead of being ignored. The commented
//! sample is `deploy/veche.sample.toml`; keep the two in step (a test
//! parses the sample).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use veche_control_plane::admission::{HttpConfig, RoomCreation};
use veche_control_plane::oidc::OidcConfig;

mod oidc;
mod recordings;
mod turn;
pub use oidc::OidcSection;
pub use recordings::{s3_secret_from_env, RecordingsSection};
pub use turn::{turn_secret_from_env, TurnSection};

/// The whole file. `Debug` never prints a secret.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listener and storage.
    pub server: ServerConfig,
    /// Control-plane options.
    pub control_plane: ControlPlaneSection,
    /// The public HTTP edge of the control plane.
    pub http: HttpSection,
    /// Who may create rooms.
    pub rooms: RoomsSection,
    /// Media-node options.
    pub media: MediaSection,
    /// Single sign-on through an OpenID Connect provider; absent: none.
    pub oidc: Option<OidcSection>,
    /// Where files outside the Raft store live (avatars, room covers).
    pub storage: StorageSection,
    /// `[[webhooks]]`: endpoints told about meetings (control plane).
    pub webhooks: Vec<WebhookSection>,
    /// `[recordings]`: where recordings are kept, and for how long.
    pub recordings: RecordingsSection,
    /// `[turn]`: the TURN server the control plane issues per-participant
    /// credentials for.
    pub turn: TurnSection,
}

/// `[storage]`: files kept outside the Raft store.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Directory of profile pictures. Default `<data_dir>/avatars`. In a
    /// cluster of several control-plane nodes every node must see the same
    /// directory (a shared mount).
    pub avatars: Option<PathBuf>,
    /// Directory of room cover images. Default `<data_dir>/covers`; shared
    /// by every control-plane node, like `avatars`.
    pub covers: Option<PathBuf>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The media section may hold a static TURN credential (refused at
        // start-up, but parsed first); it is left out rather than trusted
        // to redact it.
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("control_plane", &self.control_plane)
            .field("http", &self.http)
            .field("rooms", &self.rooms)
            .field("oidc", &self.oidc)
            .field("storage", &self.storage)
            .field("webhooks", &self.webhooks)
            .field("recordings", &self.recordings)
            .field("turn", &self.turn)
            .finish_non_exhaustive()
    }
}

/// `[http]`: the control plane's public API and web client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Count rate limits per the last `X-Forwarded-For` address instead of
    /// the TCP peer. Default false; set it only when a reverse proxy that
    /// sets the header is the only way in.
    pub trust_forwarded_for: bool,
    /// Per-client-address rate limits on room creation, joins and reads.
    /// Default true; turn off only for load tests from one address.
    pub rate_limits: bool,
    /// `frame-ancestors` of the web client's Content-Security-Policy: who
    /// may embed a meeting in a frame. Default `'none'`.
    pub frame_ancestors: String,
}

impl Default for HttpSection {
    fn default() -> Self {
        let d = HttpConfig::default();
        HttpSection {
            trust_forwarded_for: d.trust_forwarded_for,
            rate_limits: d.rate_limits,
            frame_ancestors: d.frame_ancestors,
        }
    }
}

/// `[rooms]`: who may create rooms.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoomsSection {
    /// `"anyone"` (default), `"signed_in"` or `"secret"`.
    pub create: CreatePolicy,
    /// With `create = "secret"`: the bearer secret a creation request must
    /// present (at least 32 bytes). `VECHE_CREATE_SECRET` takes precedence.
    pub create_secret: Option<String>,
}

impl std::fmt::Debug for RoomsSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomsSection")
            .field("create", &self.create)
            .field(
                "create_secret",
                &self.create_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// `rooms.create`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreatePolicy {
    /// Anyone who reaches the API creates rooms.
    #[default]
    Anyone,
    /// Only signed-in users (accounts or SSO).
    SignedIn,
    /// Only requests with `Authorization: Bearer <rooms.create_secret>`.
    Secret,
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

/// `[control_plane]`. `Debug` prints the cluster secret as `<redacted>`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlPlaneSection {
    /// Raft node id. Default 1.
    pub node_id: u64,
    /// Join-token lifetime in seconds. Default 60.
    pub token_ttl_secs: u64,
    /// Shared secret for internal RPC, Raft and the admin API. Default:
    /// random at each start, which is right for `veche serve` where nothing
    /// else needs it; `veche control-plane` and `veche media-node` require
    /// it (here or in `VECHE_CLUSTER_SECRET`).
    pub cluster_secret: Option<String>,
    /// The initial voters of a new cluster, as `"ID=URL"` (this node
    /// included), identical on every initial member. Empty: a node started
    /// with `veche control-plane` waits to be added with `veche cluster
    /// add`. Ignored once the node has joined a cluster.
    pub peers: Vec<String>,
    /// The base URL other control-plane nodes reach this one at. Default:
    /// `http://<listen>`.
    pub advertise_url: Option<String>,
}

impl std::fmt::Debug for ControlPlaneSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlaneSection")
            .field("node_id", &self.node_id)
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field(
                "cluster_secret",
                &self.cluster_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("peers", &self.peers)
            .field("advertise_url", &self.advertise_url)
            .finish()
    }
}

impl Default for ControlPlaneSection {
    fn default() -> Self {
        ControlPlaneSection {
            node_id: 1,
            token_ttl_secs: 60,
            cluster_secret: None,
            peers: Vec::new(),
            advertise_url: None,
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
    /// Seconds a room's lobby may have people waiting while nobody who
    /// moderates is in the meeting, before the node lets them in: waiters
    /// are never stranded by a moderator who left. Default 60.
    pub lobby_unattended_secs: u64,
    /// STUN servers handed to browsers. Default none (LAN). Static TURN
    /// credentials are refused at start-up: use `[turn]`.
    pub ice_servers: Vec<IceServerConfig>,
    /// `turn_urls`, `turn_secret` and `turn_ttl_secs` moved to `[turn]`
    /// when the control plane took over issuing TURN credentials; an old
    /// config that has them is refused, saying so, rather than started
    /// without TURN.
    #[serde(rename = "turn_urls", deserialize_with = "turn::refuse_turn_urls")]
    moved_turn_urls: (),
    #[serde(rename = "turn_secret", deserialize_with = "turn::refuse_turn_secret")]
    moved_turn_secret: (),
    #[serde(
        rename = "turn_ttl_secs",
        deserialize_with = "turn::refuse_turn_ttl_secs"
    )]
    moved_turn_ttl_secs: (),
    /// Region label for placement. Default empty (one region).
    pub region: String,
    /// Participants this node accepts; 0 (default) means unlimited.
    pub capacity: u32,
    /// `veche media-node` only: control-plane base URLs to register with.
    pub control_plane: Vec<String>,
    /// `veche media-node` only: the signalling URL browsers are given.
    /// Default `ws://<listen>/media/ws`.
    pub public_ws_url: Option<String>,
    /// `veche media-node` only: UDP address of the QUIC relay endpoint
    /// other media nodes cascade tracks through. Without it the node
    /// cannot share rooms with other nodes.
    pub relay_listen: Option<std::net::SocketAddr>,
    /// `veche media-node` only: `host:port` other media nodes dial.
    /// Default: `relay_listen` (which must then not be 0.0.0.0).
    pub relay_advertise: Option<String>,
    /// `veche media-node` only: directory with `ca.crt`, `node.crt` and
    /// `node.key` from `veche cluster cert`.
    pub relay_tls_dir: Option<std::path::PathBuf>,
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            node_id: 1,
            rtc_ip: None,
            reconnect_grace_secs: 15,
            lobby_unattended_secs: veche_protocol::limits::moderation::LOBBY_UNATTENDED_MS / 1000,
            ice_servers: Vec::new(),
            moved_turn_urls: (),
            moved_turn_secret: (),
            moved_turn_ttl_secs: (),
            region: String::new(),
            capacity: 0,
            control_plane: Vec::new(),
            public_ws_url: None,
            relay_listen: None,
            relay_advertise: None,
            relay_tls_dir: None,
        }
    }
}

/// `[[webhooks]]`: one endpoint that receives signed meeting events.
/// `Debug` never prints the secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// Where to `POST` the events (`http://` or `https://`).
    pub url: String,
    /// The HMAC-SHA256 key of the `Veche-Signature` header, at least 32
    /// bytes.
    pub secret: String,
}

impl std::fmt::Debug for WebhookSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSection")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Config {
    /// The webhook endpoints, for [`veche_control_plane::ControlPlane::enable_webhooks`]
    /// (which checks them).
    pub fn webhook_endpoints(&self) -> Vec<veche_control_plane::webhooks::WebhookEndpoint> {
        self.webhooks
            .iter()
            .map(|w| veche_control_plane::webhooks::WebhookEndpoint {
                url: w.url.clone(),
                secret: w.secret.clone(),
            })
            .collect()
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

/// Parses `ID=URL` (the URL may omit `http://`), as in `--peers`.
pub fn parse_peer(s: &str) -> anyhow::Result<(u64, String)> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("peer {s:?} is not ID=ADDRESS (e.g. 2=10.0.0.2:8080)"))?;
    let id: u64 = id
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("peer {s:?}: the id must be a number"))?;
    if id == 0 {
        anyhow::bail!("peer {s:?}: ids start at 1");
    }
    Ok((id, base_url(addr.trim())))
}

/// `10.0.0.2:8080` becomes `http://10.0.0.2:8080`; a URL stays as it is,
/// without a trailing slash.
pub fn base_url(addr: &str) -> String {
    let addr = addr.trim_end_matches('/');
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

impl Config {
    /// The control plane's HTTP edge settings, with the create secret from
    /// `env_create_secret` (the `VECHE_CREATE_SECRET` environment variable)
    /// before the file's. Refuses `create = "secret"` without a secret.
    pub fn http_config(&self, env_create_secret: Option<String>) -> anyhow::Result<HttpConfig> {
        let room_creation = match self.rooms.create {
            CreatePolicy::Anyone => RoomCreation::Anyone,
            CreatePolicy::SignedIn => RoomCreation::SignedIn,
            CreatePolicy::Secret => RoomCreation::Secret(
                env_create_secret
                    .filter(|s| !s.is_empty())
                    .or_else(|| self.rooms.create_secret.clone())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "rooms.create = \"secret\" needs a secret: set rooms.create_secret or \
                             VECHE_CREATE_SECRET (make one with `openssl rand -hex 32`)"
                        )
                    })?,
            ),
        };
        let http = HttpConfig {
            room_creation,
            trust_forwarded_for: self.http.trust_forwarded_for,
            rate_limits: self.http.rate_limits,
            frame_ancestors: self.http.frame_ancestors.clone(),
        };
        http.validate().map_err(|e| anyhow::anyhow!(e))?;
        Ok(http)
    }

    /// The single sign-on settings, if `[oidc]` is present (see
    /// [`OidcSection::to_config`]).
    pub fn oidc_config(
        &self,
        env_client_secret: Option<String>,
    ) -> anyhow::Result<Option<OidcConfig>> {
        self.oidc
            .as_ref()
            .map(|o| o.to_config(env_client_secret))
            .transpose()
    }

    /// Reads and parses a config file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e: toml::de::Error| {
            if turn::is_moved_key(e.message()) {
                // Without the quoted line, which may hold the old secret.
                anyhow::anyhow!("in {}: {}", path.display(), e.message())
            } else {
                anyhow::anyhow!("in {}: {e}", path.display())
            }
        })
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
    fn the_deploy_configs_parse_and_only_the_control_plane_has_turn() {
        for (text, turn) in [
            (include_str!("../deploy/veche/control-plane.toml"), true),
            (include_str!("../deploy/veche/media-node.toml"), false),
        ] {
            let c: Config = toml::from_str(text).expect("deploy config parses");
            assert!(c.control_plane.cluster_secret.is_none() && c.turn.secret.is_none());
            assert_eq!(!c.turn.urls.is_empty(), turn);
        }
    }

    #[test]
    fn webhooks_are_read_and_their_secrets_never_printed() {
        let c: Config = toml::from_str(
            "[[webhooks]]\nurl = \"https://hooks.example/veche\"\nsecret = \"webhook-secret-value\"\n",
        )
        .unwrap();
        assert_eq!(c.webhook_endpoints()[0].url, "https://hooks.example/veche");
        assert!(!format!("{c:?}").contains("webhook-secret-value"));
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = toml::from_str::<Config>("[server]\nlisten_addr = \"1.2.3.4:5\"\n").unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[test]
    fn peers_are_id_equals_address() {
        assert_eq!(
            parse_peer("2=127.0.0.2:7000").unwrap(),
            (2, "http://127.0.0.2:7000".to_owned())
        );
        assert_eq!(
            parse_peer("3=https://cp3.example.com/").unwrap(),
            (3, "https://cp3.example.com".to_owned())
        );
        let e = parse_peer("127.0.0.2:7000").unwrap_err().to_string();
        assert!(e.contains("ID=ADDRESS"), "{e}");
        let e = parse_peer("x=127.0.0.2:7000").unwrap_err().to_string();
        assert!(e.contains("number"), "{e}");
    }

    #[test]
    fn an_empty_file_means_all_defaults() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.media.reconnect_grace_secs, 15);
        assert_eq!(c.media.lobby_unattended_secs, 60);
        assert_eq!(c.control_plane.token_ttl_secs, 60);
        let http = c.http_config(None).unwrap();
        assert_eq!(http.room_creation, RoomCreation::Anyone);
        assert!(http.rate_limits && !http.trust_forwarded_for);
        assert_eq!(http.frame_ancestors, "'none'");
    }

    #[test]
    fn restricted_creation_needs_a_long_enough_secret_from_the_file_or_the_environment() {
        let c: Config = toml::from_str("[rooms]\ncreate = \"secret\"\n").unwrap();
        let e = c.http_config(None).unwrap_err().to_string();
        assert!(e.contains("create_secret") && e.contains("openssl"), "{e}");
        let long = "k".repeat(32);
        assert_eq!(
            c.http_config(Some(long.clone())).unwrap().room_creation,
            RoomCreation::Secret(long.clone())
        );
        let c: Config =
            toml::from_str("[rooms]\ncreate = \"secret\"\ncreate_secret = \"short\"\n").unwrap();
        let e = c.http_config(None).unwrap_err().to_string();
        assert!(e.contains("32 bytes"), "{e}");
        assert!(toml::from_str::<Config>("[rooms]\ncreate = \"nobody\"\n").is_err());
    }

    #[test]
    fn creation_can_be_limited_to_signed_in_users() {
        let c: Config = toml::from_str("[rooms]\ncreate = \"signed_in\"\n").unwrap();
        assert_eq!(
            c.http_config(None).unwrap().room_creation,
            RoomCreation::SignedIn
        );
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let c: Config = toml::from_str(
            "[control_plane]\ncluster_secret = \"cluster-secret-value\"\n\
             [rooms]\ncreate = \"secret\"\ncreate_secret = \"create-secret-value\"\n\
             [[media.ice_servers]]\nurls = [\"turn:t\"]\ncredential = \"turn-credential-value\"\n",
        )
        .unwrap();
        let shown = format!("{c:?}");
        for secret in [
            "cluster-secret-value",
            "create-secret-value",
            "turn-credential-value",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
