//! Runs the services of `deploy/compose.yaml` as plain processes, with the
//! commands, environment and config files the compose file gives them, so
//! that a test shows what an operator deploys actually works.
//!
//! What stands in for Docker, and nothing else:
//!
//! - **Programs.** An image named `veche…` is the `veche` binary under
//!   test (the image's entrypoint, deploy/Dockerfile); `coturn/coturn…` is
//!   Debian's `turnserver` (the image's entrypoint prepends it to a command
//!   that starts with `-`).
//! - **Ports.** Every service uses the host's network, so a port in the
//!   file is a port on this machine. Each one (`--listen`,
//!   `--relay-listen`, and coturn's `listening-port`/`tls-listening-port`)
//!   moves to a free one, everywhere it appears: in commands and in the
//!   copied config files (`:PORT` in TOML strings, so the TURN URLs the
//!   control plane issues credentials for follow coturn).
//! - **Volumes.** A bind mount of a file or directory under `deploy/` is a
//!   copy of it per service, with container paths in it (TOML strings,
//!   `key=/path` lines) turned into that service's host paths and ports
//!   moved; a named volume is a directory shared by the services that
//!   mount it; a bind mount of something `deploy/` lacks is what the
//!   operator makes by the compose file's instructions, which the test
//!   follows: relay certificates (`veche cluster ca`/`cert`) for a media
//!   node's `--relay-tls`, and a certificate for coturn's `cert`/`pkey`.
//! - **Loopback.** The tests run in a network namespace with only `lo`, on
//!   which coturn, listening on "every interface" as the file has it,
//!   finds no address; it gets `--listening-ip=127.0.0.1
//!   --relay-ip=127.0.0.1` added, the one argument not in the file.

use super::compose::{Compose, Service};
use super::{TempDir, SERVER_START_TIMEOUT, VECHE};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use veche_harness::{Certs, Launch, Output, Process, Ready};

/// `deploy/` of this repository.
pub const DEPLOY_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

/// coturn config keys that name a port.
const TURN_PORT_KEYS: &[&str] = &[
    "listening-port",
    "tls-listening-port",
    "alt-listening-port",
    "alt-tls-listening-port",
];

/// The compose file's services, running (see the module docs). Dropping it
/// kills them; the directory is kept if the test failed.
pub struct Deployment {
    /// The parsed file.
    pub compose: Compose,
    /// Each port of the file and the free port that replaced it.
    pub ports: BTreeMap<u16, u16>,
    procs: BTreeMap<String, Process>,
    /// Host path of every (service, mount target).
    mounts: BTreeMap<(String, String), PathBuf>,
    // Dropped last, so the directory outlives the processes.
    root: TempDir,
}

impl Deployment {
    /// Reads `deploy/compose.yaml` with the variables `env`, moves its ports,
    /// copies its config files and makes what the operator would make.
    /// Starts nothing yet.
    pub fn prepare(env: &BTreeMap<String, String>) -> Deployment {
        let text = std::fs::read_to_string(Path::new(DEPLOY_DIR).join("compose.yaml"))
            .expect("reading deploy/compose.yaml");
        let compose = Compose::parse(&text, &|k| env.get(k).cloned())
            .unwrap_or_else(|e| panic!("deploy/compose.yaml: {e}"));
        let root = TempDir::new("deploy");
        eprintln!("[harness] deploy/compose.yaml in {}", root.path().display());
        let mut d = Deployment {
            compose,
            ports: BTreeMap::new(),
            procs: BTreeMap::new(),
            mounts: BTreeMap::new(),
            root,
        };
        d.move_ports();
        d.place_volumes();
        d
    }

    fn move_ports(&mut self) {
        let lo = Ipv4Addr::LOCALHOST;
        for s in self.compose.services.clone() {
            for flag in ["--listen", "--relay-listen"] {
                if let Some(addr) = flag_value(&s.command, flag) {
                    let port = addr
                        .parse::<SocketAddr>()
                        .unwrap_or_else(|e| panic!("{}: {flag} {addr}: {e}", s.name))
                        .port();
                    let free = match flag {
                        "--listen" => veche_harness::free_port(lo),
                        _ => veche_harness::free_udp_port(lo),
                    };
                    self.ports
                        .insert(port, free.unwrap_or_else(|e| panic!("{e}")));
                }
            }
            for m in s.volumes.iter().filter(|m| m.is_bind()) {
                let src = Path::new(DEPLOY_DIR).join(&m.source);
                if src.is_file() && src.extension().is_some_and(|e| e == "conf") {
                    let text = std::fs::read_to_string(&src).expect("reading a .conf");
                    for (key, value) in conf_lines(&text) {
                        if TURN_PORT_KEYS.contains(&key) {
                            let port: u16 = value.parse().expect("a port number");
                            let free =
                                veche_harness::free_port(lo).unwrap_or_else(|e| panic!("{e}"));
                            self.ports.insert(port, free);
                        }
                    }
                }
            }
        }
    }

    fn place_volumes(&mut self) {
        for s in self.compose.services.clone() {
            for m in &s.volumes {
                let host = if !m.is_bind() {
                    self.root.path().join("volumes").join(&m.source)
                } else if Path::new(DEPLOY_DIR).join(&m.source).exists() {
                    self.root.path().join("svc").join(&s.name).join(&m.source)
                } else {
                    self.root.path().join("operator").join(&m.source)
                };
                self.mounts
                    .insert((s.name.clone(), m.target.clone()), host.clean());
            }
            for m in &s.volumes {
                let host = self.host_path(&s.name, &m.target).expect("mounted");
                let src = Path::new(DEPLOY_DIR).join(&m.source);
                if !m.is_bind() {
                    std::fs::create_dir_all(&host).expect("a volume directory");
                } else if src.exists() {
                    self.copy_rewritten(&s, &src, &host);
                }
            }
        }
        for s in self.compose.services.clone() {
            self.make_operator_files(&s);
        }
        for s in &self.compose.services {
            for m in s.volumes.iter().filter(|m| m.is_bind()) {
                let host = self.host_path(&s.name, &m.target).expect("mounted");
                assert!(
                    host.exists(),
                    "{}: compose.yaml mounts {}, which deploy/ does not hold and its \
                     instructions do not make",
                    s.name,
                    m.source
                );
            }
        }
    }

    /// The host path of `path` inside service `svc`'s container: through
    /// the mount with the longest target that contains it.
    pub fn host_path(&self, svc: &str, path: &str) -> Option<PathBuf> {
        self.mounts
            .iter()
            .filter(|((s, target), _)| {
                s == svc && (path == target || path.starts_with(&format!("{target}/")))
            })
            .max_by_key(|((_, target), _)| target.len())
            .map(
                |((_, target), host)| match path[target.len()..].trim_start_matches('/') {
                    "" => host.clone(),
                    rest => host.join(rest),
                },
            )
    }

    fn copy_rewritten(&self, s: &Service, src: &Path, dst: &Path) {
        if src.is_dir() {
            std::fs::create_dir_all(dst).expect("a copy directory");
            for entry in std::fs::read_dir(src).expect("reading a deploy/ directory") {
                let entry = entry.expect("a directory entry");
                self.copy_rewritten(s, &entry.path(), &dst.join(entry.file_name()));
            }
            return;
        }
        std::fs::create_dir_all(dst.parent().expect("a parent")).expect("a copy directory");
        let text = std::fs::read_to_string(src).expect("reading a deploy/ file");
        let text = match src.extension().and_then(|e| e.to_str()) {
            Some("toml") => self.rewrite_toml(&s.name, &text),
            Some("conf") => self.rewrite_conf(&s.name, &text),
            _ => text,
        };
        std::fs::write(dst, text).expect("writing a copy");
    }

    /// `text` with each port of the file moved, wherever `:PORT` ends a
    /// number.
    pub fn move_ports_in(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(':') {
            out.push_str(&rest[..=i]);
            rest = &rest[i + 1..];
            let len = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            match rest[..len]
                .parse::<u16>()
                .ok()
                .and_then(|p| self.ports.get(&p))
            {
                Some(new) => out.push_str(&new.to_string()),
                None => out.push_str(&rest[..len]),
            }
            rest = &rest[len..];
        }
        out.push_str(rest);
        out
    }

    /// A container path or any other argument, as the process on the host
    /// takes it.
    fn rewrite_value(&self, svc: &str, value: &str) -> String {
        match value.starts_with('/').then(|| self.host_path(svc, value)) {
            Some(Some(host)) => host.display().to_string(),
            _ => self.move_ports_in(value),
        }
    }

    fn rewrite_toml(&self, svc: &str, text: &str) -> String {
        let mut out = String::new();
        for (i, piece) in text.split('"').enumerate() {
            if i > 0 {
                out.push('"');
            }
            // Odd pieces are the insides of strings (the deploy configs
            // have no escaped quotes).
            match i % 2 {
                1 => out.push_str(&self.rewrite_value(svc, piece)),
                _ => out.push_str(piece),
            }
        }
        out
    }

    fn rewrite_conf(&self, svc: &str, text: &str) -> String {
        let mut out = String::new();
        for line in text.lines() {
            match line.split_once('=') {
                Some((k, v)) if !line.starts_with('#') && TURN_PORT_KEYS.contains(&k) => {
                    let port = v.parse().ok().and_then(|p: u16| self.ports.get(&p));
                    out.push_str(&format!("{k}={}", port.expect("a moved port")))
                }
                Some((k, v)) if !line.starts_with('#') && v.starts_with('/') => {
                    out.push_str(&format!("{k}={}", self.rewrite_value(svc, v)))
                }
                _ => out.push_str(line),
            }
            out.push('\n');
        }
        out
    }

    /// What the compose file tells the operator to make before `up`.
    fn make_operator_files(&self, s: &Service) {
        if let Some(dir) = flag_value(&s.command, "--relay-tls") {
            let id: u64 = flag_value(&s.command, "--id")
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| panic!("{}: --relay-tls without --id", s.name));
            let host = self
                .host_path(&s.name, dir)
                .expect("--relay-tls is mounted");
            if !host.exists() {
                let ca = self.root.path().join("operator").join("veche-ca");
                Certs::make(Path::new(VECHE), &ca)
                    .and_then(|c| c.node(id, &host))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
        if let Some(conf) = flag_value(&s.command, "-c") {
            let host = self.host_path(&s.name, conf).expect("-c is mounted");
            let text = std::fs::read_to_string(&host).expect("reading the coturn config");
            let files: BTreeMap<&str, &str> = conf_lines(&text)
                .filter(|(k, _)| ["cert", "pkey"].contains(k))
                .collect();
            if let (Some(cert), Some(key)) = (files.get("cert"), files.get("pkey")) {
                self_signed(Path::new(cert), Path::new(key));
            }
        }
    }

    /// The `Launch` of service `name`: its program, its command with ports
    /// and paths as on this host, and its environment.
    pub fn launch(&self, name: &str) -> Launch {
        let s = self.compose.service(name);
        let mut args: Vec<String> = s
            .command
            .iter()
            .map(|a| match a.split_once('=') {
                Some((flag, v)) if flag.starts_with("--") && v.starts_with('/') => {
                    format!("{flag}={}", self.rewrite_value(name, v))
                }
                _ => self.rewrite_value(name, a),
            })
            .collect();
        let exe = if s.image.starts_with("coturn/coturn") {
            assert!(
                args.first().is_some_and(|a| a.starts_with('-')),
                "{name}: the coturn image runs turnserver only for a command of options"
            );
            args.extend([
                "--listening-ip=127.0.0.1".into(),
                "--relay-ip=127.0.0.1".into(),
            ]);
            "turnserver".to_owned()
        } else if s.image.contains("veche") {
            VECHE.to_owned()
        } else {
            panic!("{name}: no stand-in for image {}", s.image);
        };
        let log = self.root.path().join("logs").join(format!("{name}.log"));
        std::fs::create_dir_all(log.parent().expect("a parent")).expect("a log directory");
        let mut launch = Launch::new(name, exe)
            .args(args)
            .output(Output::Log(log))
            .ready(Ready::AnyLine(vec![
                "is running at".into(),
                "Relay ports initialization done".into(),
            ]));
        for (k, v) in &s.environment {
            launch = launch.env(k, v);
        }
        for proxy in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
            launch = launch.env_remove(proxy);
        }
        launch
    }

    /// Starts every service, those without `depends_on` first, and waits
    /// until each says it runs.
    pub async fn up(&mut self) {
        let (first, later): (Vec<Service>, Vec<Service>) = self
            .compose
            .services
            .clone()
            .into_iter()
            .partition(|s| s.depends_on.is_empty());
        for wave in [first, later] {
            for s in &wave {
                let launch = self.launch(&s.name);
                eprintln!("[harness] {}: {}", s.name, launch.command_line());
                let proc = launch.spawn().unwrap_or_else(|e| panic!("{e}"));
                self.procs.insert(s.name.clone(), proc);
            }
            for s in &wave {
                let proc = self.procs.get_mut(&s.name).expect("spawned");
                if let Err(e) = proc.ready(SERVER_START_TIMEOUT).await {
                    panic!("{} did not start: {e}\n{}", s.name, proc.tail(30));
                }
            }
        }
    }

    /// `http://127.0.0.1:PORT` of service `name`'s `--listen` (moved).
    pub fn base(&self, name: &str) -> String {
        let s = self.compose.service(name);
        let listen: SocketAddr = self
            .move_ports_in(flag_value(&s.command, "--listen").expect("--listen"))
            .parse()
            .expect("an address");
        format!("http://127.0.0.1:{}", listen.port())
    }

    /// The moved port that replaced `port` of the file.
    pub fn port(&self, port: u16) -> u16 {
        *self
            .ports
            .get(&port)
            .unwrap_or_else(|| panic!("port {port} is not in the compose file"))
    }

    /// The last lines of each service's log, for a failure message.
    pub fn tails(&self) -> String {
        self.procs
            .iter()
            .map(|(name, p)| format!("--- {name}\n{}", p.tail(15)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The value after `flag` in `command`.
pub fn flag_value<'a>(command: &'a [String], flag: &str) -> Option<&'a str> {
    command
        .iter()
        .position(|a| a == flag)
        .and_then(|i| command.get(i + 1))
        .map(String::as_str)
}

/// The `key=value` lines of a coturn config, without comments.
pub fn conf_lines(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
}

/// A self-signed certificate for the TURN server's `turns:` name, standing
/// in for the one an operator gets from a CA (clients trust it as it is).
fn self_signed(cert: &Path, key: &Path) {
    std::fs::create_dir_all(cert.parent().expect("a parent")).expect("a certificate directory");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=turn.example.com"])
        .args(["-addext", "subjectAltName=DNS:turn.example.com"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Paths without `.` components (`deploy/./veche` is `deploy/veche`).
trait Clean {
    fn clean(&self) -> PathBuf;
}

impl Clean for PathBuf {
    fn clean(&self) -> PathBuf {
        self.components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect()
    }
}
