//! The Janus process: a private config folder, the loopback shim, and
//! `janus` started with `veche-harness` on a free loopback port.
//!
//! ## Why an `LD_PRELOAD` shim
//!
//! Janus and its libnice skip every interface flagged `IFF_LOOPBACK` when
//! gathering candidates, so in a loopback-only network namespace (where all
//! our WebRTC benchmarks run) Janus offers no usable candidate and ICE
//! fails; `ice_enforce_list = "lo"` does not help. [`JanusServer::start`]
//! therefore compiles a ten-line C library at run time (`cc`, no workspace
//! changes) that wraps `getifaddrs()` and clears `IFF_LOOPBACK`, and
//! preloads it into the Janus process only.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use veche_harness::{Launch, Output, Process};

/// The `getifaddrs()` wrapper preloaded into Janus (see the module docs).
const SHIM_C: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stddef.h>
int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **) = NULL;
    if (!real) real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    if (!real) return -1;
    int r = real(ifap);
    if (r == 0)
        for (struct ifaddrs *i = *ifap; i; i = i->ifa_next)
            i->ifa_flags &= ~IFF_LOOPBACK;
    return r;
}
"#;

/// Where Debian (and a source build) put Janus's modules.
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/janus",
    "/usr/lib/aarch64-linux-gnu/janus",
    "/usr/lib/janus",
    "/usr/local/lib/janus",
    "/opt/janus/lib/janus",
];

/// A Janus process with its own config folder, killed on drop.
pub struct JanusServer {
    proc: Process,
    port: u16,
    config_dir: PathBuf,
}

fn on_path(exe: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(exe))
        .find(|p| p.is_file())
}

/// `.so` files in `dir` except `keep`, comma-separated, for `disable`.
fn disable_list(dir: &Path, keep: &str) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".so") && n != keep)
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.join(",")
}

impl JanusServer {
    /// Writes a config folder, builds the loopback shim, starts `janus` and
    /// waits until its WebSocket port accepts connections.
    pub fn start() -> Result<JanusServer, String> {
        let exe = on_path("janus").ok_or(
            "`janus` is not installed (Debian: `apt-get install -y janus`, version 1.1.x)",
        )?;
        let modules = MODULE_DIRS
            .iter()
            .map(Path::new)
            .find(|d| d.join("plugins/libjanus_videoroom.so").is_file())
            .ok_or("janus is installed but its VideoRoom plugin was not found")?;
        // Removed by `Drop for JanusServer` unless VECHE_KEEP_JANUS_DIR is
        // set.
        let dir = std::env::temp_dir().join(format!(
            "veche-janus-{}-{}",
            std::process::id(),
            veche_harness::random_hex(4)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))
        };

        // The shim.
        write("shim.c", SHIM_C)?;
        let shim = dir.join("loopback-shim.so");
        let cc = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&shim)
            .arg(dir.join("shim.c"))
            .arg("-ldl")
            .output()
            .map_err(|e| format!("cannot run `cc` to build the Janus loopback shim: {e}"))?;
        if !cc.status.success() {
            return Err(format!(
                "building the Janus loopback shim failed: {}",
                String::from_utf8_lossy(&cc.stderr)
            ));
        }

        let port = veche_harness::free_port(Ipv4Addr::LOCALHOST)?;
        let m = modules.display();
        write(
            "janus.jcfg",
            &format!(
                r#"general: {{
	configs_folder = "{cfg}"
	plugins_folder = "{m}/plugins"
	transports_folder = "{m}/transports"
	events_folder = "{m}/events"
	loggers_folder = "{m}/loggers"
	debug_level = 3
	interface = "127.0.0.1"
	session_timeout = 60
}}
certificates: {{
}}
media: {{
	ipv6 = false
	rtp_port_range = "20000-60000"
}}
nat: {{
	nice_debug = false
	ignore_mdns = true
	ice_enforce_list = "127.0.0.1"
}}
plugins: {{
	disable = "{plugins}"
}}
transports: {{
	disable = "{transports}"
}}
loggers: {{
	disable = "{loggers}"
}}
events: {{
	broadcast = false
	disable = "{events}"
}}
"#,
                cfg = dir.display(),
                plugins = disable_list(&modules.join("plugins"), "libjanus_videoroom.so"),
                transports = disable_list(&modules.join("transports"), "libjanus_websockets.so"),
                loggers = disable_list(&modules.join("loggers"), ""),
                events = disable_list(&modules.join("events"), ""),
            ),
        )?;
        write(
            "janus.transport.websockets.jcfg",
            &format!(
                r#"general: {{
	json = "plain"
	ws = true
	ws_port = {port}
	ws_ip = "127.0.0.1"
	wss = false
}}
admin: {{
	admin_ws = false
	admin_wss = false
}}
"#
            ),
        )?;
        // No sample rooms: the harness creates its own.
        write(
            "janus.plugin.videoroom.jcfg",
            "general: {\n\tstring_ids = false\n}\n",
        )?;

        // Janus prints no URL when it is up: it is ready once its
        // WebSocket port accepts connections.
        let proc = Launch::new("janus", &exe)
            .arg("-F")
            .arg(&dir)
            .arg("-C")
            .arg(dir.join("janus.jcfg"))
            .arg("-o")
            .env("LD_PRELOAD", &shim)
            .output(Output::Log(dir.join("janus.log")))
            .spawn()?;
        let mut server = JanusServer {
            proc,
            port,
            config_dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            if let Some(status) = server.proc.try_exit() {
                return Err(format!(
                    "janus exited ({status}) before listening; log tail:\n{}",
                    server.proc.tail(15)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("janus did not open ws port {port} within 15 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The Janus process id, for CPU and memory figures, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    /// The last `n` lines Janus logged.
    pub fn tail(&self, n: usize) -> String {
        self.proc.tail(n)
    }

    /// `ws://127.0.0.1:PORT`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The generated config folder (also holds `janus.log`).
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }
}

impl Drop for JanusServer {
    fn drop(&mut self) {
        let _ = self.proc.stop_blocking(Duration::from_secs(3));
        if std::env::var_os("VECHE_KEEP_JANUS_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.config_dir);
        }
    }
}
