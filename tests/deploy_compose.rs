//! What an operator deploys works: `deploy/compose.yaml`'s three
//! control-plane nodes, two media nodes and coturn, run as plain processes
//! with the same commands and config files (`common/deploy.rs` says what
//! stands in for Docker), form a cluster in which a room is created and
//! joined, and coturn, on `deploy/coturn/turnserver.conf`, relays over UDP,
//! TCP and TLS with the credentials the control plane issues in join tokens
//! (the media nodes, which have no TURN secret, hand them on), and refuses
//! to relay to loopback or private addresses. The systemd units run the
//! same config files.
//!
//! Needs Debian's `coturn` (`turnserver`, `turnutils_uclient`) and
//! `openssl`. `docker compose config` also checks the file where the
//! compose plugin is installed (it is not on the CI machine).

use crate::common::compose::{parse, Compose, Yaml};
use crate::common::deploy::{conf_lines, flag_value, Deployment, DEPLOY_DIR};
use crate::common::fake_media::token_claims;
use crate::common::tls_tunnel::TlsTunnel;
use crate::common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use veche_protocol::turn::{credential, TurnSecret};

/// A public address (TEST-NET-3) to relay to: allowed by the config.
const PUBLIC_PEER: &str = "203.0.113.7";

/// What coturn did with one allocation attempt.
#[derive(Debug, PartialEq)]
enum Turn {
    /// Allocated, and relayed a message towards the peer.
    Relayed,
    /// Allocated, but refused the peer (403 Forbidden IP).
    ForbiddenPeer,
    /// No allocation: the credential was refused.
    Refused,
    /// None of these within the time: the client's last lines.
    Unclear(String),
}

/// [`allocate_once`], again (up to three times in all) while the outcome
/// is unclear: the client now and then stalls after its TLS handshake.
fn allocate(transport: &str, port: u16, user: &str, pass: &str, peer: &str) -> Turn {
    let mut outcome = allocate_once(transport, port, user, pass, peer);
    for _ in 1..3 {
        if !matches!(outcome, Turn::Unclear(_)) {
            break;
        }
        outcome = allocate_once(transport, port, user, pass, peer);
    }
    outcome
}

/// One allocation with `turnutils_uclient` over `transport` ("udp" or
/// "tcp"; TLS is TCP through a [`TlsTunnel`]) on 127.0.0.1 (standing in
/// for turn.example.com) with one message to `peer`. The client waits for an echo that never comes, so it
/// is stopped after a few seconds and judged by what it printed.
fn allocate_once(transport: &str, port: u16, user: &str, pass: &str, peer: &str) -> Turn {
    let mut cmd = Command::new("timeout");
    // Line-buffered, so what it printed survives the timeout's SIGTERM.
    cmd.args(["8", "stdbuf", "-oL", "turnutils_uclient"]);
    match transport {
        "udp" => {}
        "tcp" => {
            cmd.arg("-t");
        }
        other => panic!("no transport {other}"),
    }
    let out = cmd
        .args(["-p", &port.to_string(), "-u", user, "-w", pass])
        .args(["-n", "1", "-c", "-e", peer, "127.0.0.1"])
        .output()
        .expect("running turnutils_uclient (apt-get install coturn)");
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("tot_send_msgs=1") {
        Turn::Relayed
    } else if text.contains("403 (Forbidden IP)") {
        Turn::ForbiddenPeer
    } else if text.contains("Cannot complete Allocation") {
        Turn::Refused
    } else {
        let tail: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        Turn::Unclear(tail[tail.len().saturating_sub(3)..].join(" / "))
    }
}

/// The leader's view of the cluster once it has three voters and both media
/// nodes alive.
async fn healthy_cluster(d: &Deployment, secret: &str) -> Value {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let cp1 = d.base("cp1");
    wait_for(
        "three voters elect a leader that sees both media nodes alive",
        secs(60),
        async || {
            let get = async |base: &str| -> Result<Value, String> {
                let r = http
                    .get(format!("{base}/api/admin/cluster"))
                    .bearer_auth(secret)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                r.json::<Value>().await.map_err(|e| e.to_string())
            };
            let view = get(&cp1).await?;
            let leader = view["leader"]["addr"]
                .as_str()
                .ok_or(format!("no leader: {view}"))?;
            let view = get(leader).await?;
            let voters = view["members"]
                .as_array()
                .map_or(0, |m| m.iter().filter(|m| m["voter"] == true).count());
            let alive = view["media_nodes"]
                .as_array()
                .map_or(0, |m| m.iter().filter(|m| m["alive"] == true).count());
            match (voters, alive) {
                (3, 2) => Ok(view),
                _ => Err(format!(
                    "{voters} voters, {alive} media nodes alive: {view}"
                )),
            }
        },
    )
    .await
}

/// `join`'s answer with its `ws_url` (a public `wss://` name) replaced by
/// the address of the media node that announces it, as the reverse proxy
/// would route it.
fn through_proxy(d: &Deployment, joined: &Value) -> Value {
    let ws = str_field(joined, "ws_url");
    let svc = d
        .compose
        .services
        .iter()
        .find(|s| flag_value(&s.command, "--public-ws-url") == Some(ws))
        .unwrap_or_else(|| panic!("no media node announces {ws}"));
    let mut patched = joined.clone();
    let base = d.base(&svc.name).replace("http://", "ws://");
    patched["ws_url"] = Value::String(format!("{base}/media/ws"));
    patched
}

#[tokio::test(flavor = "multi_thread")]
async fn the_compose_services_run_as_processes_form_a_cluster_and_coturn_relays_for_it() {
    let cluster_secret = veche_harness::cluster_secret();
    let turn_secret = veche_harness::random_hex(32);
    let env = BTreeMap::from([
        ("VECHE_CLUSTER_SECRET".to_owned(), cluster_secret.clone()),
        ("VECHE_TURN_SECRET".to_owned(), turn_secret.clone()),
    ]);
    let mut d = Deployment::prepare(&env);
    let names: BTreeSet<&str> = d.compose.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["cp1", "cp2", "cp3", "media1", "media2", "coturn"])
    );
    for s in &d.compose.services {
        assert_eq!(s.network_mode.as_deref(), Some("host"), "{}", s.name);
        // The TURN secret is the control plane's and coturn's (on its
        // command line), never a media node's.
        let has_turn_secret = s.environment.contains_key("VECHE_TURN_SECRET");
        assert_eq!(
            has_turn_secret,
            s.command.first().map(String::as_str) == Some("control-plane"),
            "{}: {:?}",
            s.name,
            s.environment.keys()
        );
    }
    // One data volume per Veche node, and one they all share.
    assert_eq!(
        d.compose.volumes,
        [
            "cp1-data",
            "cp2-data",
            "cp3-data",
            "media1-data",
            "media2-data",
            "shared"
        ]
    );
    docker_compose_config(&env);

    d.up().await;
    let view = healthy_cluster(&d, &cluster_secret).await;
    eprintln!("[deploy] leader's view: {view}");

    // A room made on one node, joined through the two others.
    let room = create_room(&d.base("cp1"), "Deployed").await;
    let slug = str_field(&room, "slug");
    // control-plane.toml is in effect: links name the public site.
    assert_eq!(
        str_field(&room, "link"),
        format!("https://meet.example.com/r/{slug}")
    );
    let ann = join(&d.base("cp2"), slug, "Ann").await;
    let bo = join(&d.base("cp3"), slug, "Bo").await;
    let (mut ann_ws, ann_joined) = Signal::join(&d.base("cp2"), &through_proxy(&d, &ann)).await;
    let (_bo_ws, bo_joined) = Signal::join(&d.base("cp3"), &through_proxy(&d, &bo)).await;
    assert_ne!(
        str_field(&ann_joined, "participant_id"),
        str_field(&bo_joined, "participant_id")
    );
    ann_ws
        .recv_matching("Ann sees Bo join", secs(10), |v| {
            v["type"] == "participant_joined" && v["participant"]["display_name"] == "Bo"
        })
        .await;

    // The TURN URLs of control-plane.toml, naming the ports coturn listens
    // on, with the credential of Ann's join token: the media node, whose
    // config and environment have no TURN, hands it on.
    let turn = ann_joined["ice_servers"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["username"].is_string()))
        .unwrap_or_else(|| panic!("no TURN server in {ann_joined}"))
        .clone();
    let claims = token_claims(str_field(&ann, "token"));
    assert_eq!(claims["ice_servers"], serde_json::json!([turn]), "{claims}");
    assert!(!claims.to_string().contains(&turn_secret));
    let (udp, tls) = (d.port(3478), d.port(443));
    let want = [
        format!("turn:turn.example.com:{udp}?transport=udp"),
        format!("turn:turn.example.com:{udp}?transport=tcp"),
        format!("turns:turn.example.com:{tls}?transport=tcp"),
    ];
    assert_eq!(turn["urls"], serde_json::json!(want), "{turn}");
    let user = str_field(&turn, "username").to_owned();
    let pass = str_field(&turn, "credential").to_owned();
    assert!(!ann_joined.to_string().contains(&turn_secret));

    // coturn with the deploy config: up (the first attempt waits for it).
    let (u, p) = (user.clone(), pass.clone());
    wait_for(
        "coturn relays over UDP with Ann's credential",
        secs(30),
        async || {
            let (u, p) = (u.clone(), p.clone());
            match tokio::task::spawn_blocking(move || allocate("udp", udp, &u, &p, PUBLIC_PEER))
                .await
                .expect("joined")
            {
                Turn::Relayed => Ok(()),
                other => Err(format!("{other:?}; {}", d.tails())),
            }
        },
    )
    .await;

    // TURN over TLS on the 443 listener, with the certificate the config
    // names (the tunnel checks it is for turn.example.com).
    let conf = std::fs::read_to_string(format!("{DEPLOY_DIR}/coturn/turnserver.conf")).unwrap();
    let cert = conf_lines(&conf)
        .find(|(k, _)| *k == "cert")
        .expect("cert=")
        .1;
    let cert = d
        .host_path("coturn", cert)
        .expect("the certificate is mounted");
    let tunnel = TlsTunnel::start(([127, 0, 0, 1], tls).into(), "turn.example.com", &cert);
    let tls = tunnel.port;

    let now = now_ms() / 1000;
    let expired_user = format!("{}:{}", now - 60, str_field(&ann_joined, "participant_id"));
    let expired_pass = credential(&TurnSecret::new(turn_secret.as_str()), &expired_user);
    let ok = (user.as_str(), pass.as_str());
    let tampered = format!("x{pass}");
    let expired = (expired_user.as_str(), expired_pass.as_str());
    // (transport shown, port, credential, peer, what coturn must do)
    let cases = [
        ("tcp", udp, ok, PUBLIC_PEER, Turn::Relayed),
        ("tls", tls, ok, PUBLIC_PEER, Turn::Relayed),
        ("udp", udp, ok, "127.0.0.1", Turn::ForbiddenPeer),
        ("tls", tls, ok, "10.0.0.11", Turn::ForbiddenPeer),
        ("udp", udp, ok, "192.168.1.10", Turn::ForbiddenPeer),
        ("udp", udp, ok, "172.16.0.1", Turn::ForbiddenPeer),
        ("udp", udp, ok, "169.254.169.254", Turn::ForbiddenPeer),
        (
            "udp",
            udp,
            (ok.0, tampered.as_str()),
            PUBLIC_PEER,
            Turn::Refused,
        ),
        ("udp", udp, expired, PUBLIC_PEER, Turn::Refused),
    ];
    let results: Vec<Turn> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(shown, port, (u, p), peer, _)| {
                // TLS is TCP through the tunnel.
                let transport = if *shown == "tls" { "tcp" } else { shown };
                s.spawn(move || allocate(transport, *port, u, p, peer))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("joined"))
            .collect()
    });
    for ((shown, _, (u, _), peer, want), got) in cases.iter().zip(&results) {
        assert_eq!(
            got,
            want,
            "{shown} as {u} to {peer}: coturn answered {got:?}\n{}",
            d.tails()
        );
    }
}

/// `docker compose config` accepts the file, where the plugin exists.
fn docker_compose_config(env: &BTreeMap<String, String>) {
    let has_compose = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_compose {
        eprintln!("[deploy] no `docker compose` here: the file is checked by running it instead");
        return;
    }
    let out = Command::new("docker")
        .args([
            "compose",
            "-f",
            &format!("{DEPLOY_DIR}/compose.yaml"),
            "config",
            "--quiet",
        ])
        .envs(env)
        .output()
        .expect("running docker compose");
    assert!(
        out.status.success(),
        "docker compose config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_compose_file_refuses_to_start_without_its_secrets() {
    let text = std::fs::read_to_string(format!("{DEPLOY_DIR}/compose.yaml")).unwrap();
    let e = Compose::parse(&text, &|_| None).unwrap_err();
    assert!(e.contains("VECHE_CLUSTER_SECRET"), "{e}");
    let only_cluster = |k: &str| (k == "VECHE_CLUSTER_SECRET").then(|| "s".repeat(64));
    let e = Compose::parse(&text, &only_cluster).unwrap_err();
    assert!(e.contains("VECHE_TURN_SECRET"), "{e}");
    let empty = |k: &str| (k == "VECHE_CLUSTER_SECRET").then(String::new);
    let e = Compose::parse(&text, &empty).unwrap_err();
    assert!(
        e.contains("VECHE_CLUSTER_SECRET"),
        "an empty secret passed: {e}"
    );
}

#[test]
fn the_compose_reader_refuses_what_it_would_misread() {
    let ok = "a:\n  b: [\"x\", 'y', z]\n  c:\n    - one # note\n    - \"two # not a note\"\n";
    assert_eq!(
        parse(ok).unwrap(),
        Yaml::Map(vec![(
            "a".into(),
            Yaml::Map(vec![
                (
                    "b".into(),
                    Yaml::List(vec!["x".into(), "y".into(), "z".into()])
                ),
                (
                    "c".into(),
                    Yaml::List(vec!["one".into(), "two # not a note".into()])
                ),
            ])
        )])
    );
    for bad in [
        "x: &anchor\n  a: 1\n",
        "x: *alias\n",
        "x: |\n  text\n",
        "x: {a: 1}\n",
        "x:\n\t- a\n",
        "x: 1\nx: 2\n",
        "x:\n  - a: 1\n",
        "x: [a, [b]]\n",
        "x: 1\n   y: 2\n",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}: {:?}", parse(bad));
    }
    let service =
        |extra: &str| format!("services:\n  s:\n    image: veche\n{extra}volumes:\n  data:\n");
    assert!(Compose::parse(&service(""), &|_| None).is_ok());
    for extra in [
        "    ports: [\"80:80\"]\n",
        "    entrypoint: [\"sh\"]\n",
        "    volumes:\n      - other:/x\n",
    ] {
        let e = Compose::parse(&service(extra), &|_| None);
        assert!(e.is_err(), "accepted {extra:?}");
    }
    let env = |k: &str| (k == "SET").then(|| "v".to_owned());
    let i = |s: &str| crate::common::compose::interpolate(s, &env);
    assert_eq!(i("a${SET}b$$c").unwrap(), "avb$c");
    assert_eq!(i("${UNSET:-d:e}").unwrap(), "d:e");
    assert_eq!(i("${SET:?no}").unwrap(), "v");
    assert!(i("${UNSET:?say why}").unwrap_err().contains("say why"));
}

/// The `ExecStart=` words of a unit in deploy/systemd/.
fn exec_start(unit: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{DEPLOY_DIR}/systemd/{unit}")).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("{unit} has no ExecStart"));
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn the_systemd_units_run_the_config_files_the_compose_services_run() {
    let env = |_: &str| Some("x".repeat(64));
    let text = std::fs::read_to_string(format!("{DEPLOY_DIR}/compose.yaml")).unwrap();
    let compose = Compose::parse(&text, &env).unwrap();
    // The deploy/ file a service's `flag` path comes from, through its mounts.
    let source_of = |svc: &str, flag: &str| -> String {
        let s = compose.service(svc);
        let path = flag_value(&s.command, flag).unwrap_or_else(|| panic!("{svc}: no {flag}"));
        let m = s
            .volumes
            .iter()
            .filter(|m| {
                m.is_bind() && (path == m.target || path.starts_with(&format!("{}/", m.target)))
            })
            .max_by_key(|m| m.target.len())
            .unwrap_or_else(|| panic!("{svc}: {path} is not mounted"));
        format!(
            "{}{}",
            m.source.trim_start_matches("./"),
            &path[m.target.len()..]
        )
    };
    for (unit, svc, sub, file) in [
        (
            "veche-control-plane.service",
            "cp1",
            "control-plane",
            "veche/control-plane.toml",
        ),
        (
            "veche-media-node.service",
            "media1",
            "media-node",
            "veche/media-node.toml",
        ),
    ] {
        let exec = exec_start(unit);
        assert_eq!(exec[1], sub, "{unit}: {exec:?}");
        let in_unit = flag_value(&exec, "--config").expect("--config");
        assert_eq!(compose.service(svc).command[0], sub);
        assert_eq!(source_of(svc, "--config"), file);
        assert_eq!(
            Path::new(in_unit).file_name(),
            Path::new(file).file_name(),
            "{unit}"
        );
    }
    let exec = exec_start("veche-coturn.service");
    assert_eq!(exec[0], "/usr/bin/turnserver");
    assert_eq!(
        flag_value(&exec, "-c"),
        flag_value(&compose.service("coturn").command, "-c")
    );
    assert_eq!(source_of("coturn", "-c"), "coturn/turnserver.conf");
    assert!(exec.contains(&"--static-auth-secret=${VECHE_TURN_SECRET}".to_owned()));
    // The coturn config: REST credentials and no secret of its own.
    let conf = std::fs::read_to_string(format!("{DEPLOY_DIR}/coturn/turnserver.conf")).unwrap();
    let keys: Vec<(&str, &str)> = conf_lines(&conf).collect();
    assert!(conf.lines().any(|l| l.trim() == "use-auth-secret"));
    assert!(!keys.iter().any(|(k, _)| *k == "static-auth-secret"));
    for (k, v) in [("listening-port", "3478"), ("tls-listening-port", "443")] {
        assert!(keys.contains(&(k, v)), "{k}={v} missing");
    }
    // systemd itself accepts the units, where it is installed; the only
    // complaint allowed is that this machine has no /usr/local/bin/veche.
    let Ok(out) = Command::new("systemd-analyze")
        .arg("verify")
        .args([
            "veche-control-plane.service",
            "veche-media-node.service",
            "veche-coturn.service",
        ])
        .current_dir(format!("{DEPLOY_DIR}/systemd"))
        .output()
    else {
        eprintln!("[deploy] no systemd-analyze here");
        return;
    };
    let complaints: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("/usr/local/bin/veche is not executable"))
        .map(str::to_owned)
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify: {complaints:#?}"
    );
}
