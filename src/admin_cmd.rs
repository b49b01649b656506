//! `veche admin`: account management from the operator's shell, against a
//! running server, behind the cluster secret. `veche admin create-user
//! --admin` is how the first administrator comes to be: there is no
//! default account and no default password anywhere.
//!
//! The password is read from a prompt that does not echo it, or with
//! `--password-stdin` from standard input (for scripts); never from a
//! flag, which `ps` and shell history would show.
//!
//! The cluster secret comes from `--cluster-secret`/`VECHE_CLUSTER_SECRET`,
//! else the config file, else the file `veche serve` keeps in its data
//! directory when none is configured ([`local_secret`]).

use crate::config::{base_url, Config};
use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use veche_protocol::account::{NewUser, UserView, ADMIN_CLUSTER_USERS};
use veche_protocol::error::ErrorBody;

/// The file in the data directory holding the cluster secret of a
/// `veche serve` started without one.
pub const SECRET_FILE: &str = "cluster-secret";

/// The cluster secret of a server started without one configured: read
/// from `<data_dir>/cluster-secret`, or made (32 random bytes, hex) and
/// written there readable by its owner only. Kept across restarts so that
/// `veche admin` on the same machine can reach the server.
pub fn local_secret(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(SECRET_FILE);
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim().to_owned();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", data_dir.display()))?;
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| anyhow::anyhow!("the OS random number generator failed"))?;
    let secret: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    writeln!(f, "{secret}")?;
    Ok(secret)
}

/// The cluster secret for a command that talks to a running server: the
/// flag or `VECHE_CLUSTER_SECRET`, else the config file's, else the one
/// `veche serve` keeps in its data directory.
fn cluster_secret(flag: Option<String>, cfg: &Config, data_dir: &Path) -> anyhow::Result<String> {
    if let Some(s) = flag
        .filter(|s| !s.is_empty())
        .or_else(|| cfg.control_plane.cluster_secret.clone())
    {
        return Ok(s);
    }
    let path = data_dir.join(SECRET_FILE);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| {
            anyhow::anyhow!(
                "no cluster secret: set VECHE_CLUSTER_SECRET, or pass --data-dir of the \
                 running `veche serve` (cannot read {}: {e})",
                path.display()
            )
        })
}

/// How a command reaches a running server: its URL, and where the
/// cluster secret comes from. Flattened into `veche admin` and
/// `veche recording`, whose flags are global to their subcommands.
#[derive(Args)]
pub struct ServerArgs {
    /// The server's base URL (any control-plane node).
    #[arg(
        long,
        global = true,
        env = "VECHE_CONTROL_PLANE",
        default_value = "http://127.0.0.1:8080"
    )]
    pub control_plane: String,
    /// Config file, for its cluster secret and data directory (and, for
    /// `veche recording`, its `[recordings]` store).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// The server's data directory, where `veche serve` keeps its cluster
    /// secret when none is configured (and its local recordings store).
    /// Default: the config file's, else ./veche-data.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Cluster secret; prefer the environment variable, which does not
    /// show up in `ps`.
    #[arg(
        long,
        global = true,
        env = "VECHE_CLUSTER_SECRET",
        hide_env_values = true
    )]
    cluster_secret: Option<String>,
}

impl ServerArgs {
    /// The config file (or the defaults without one) and the data
    /// directory: the flag's, else the config's.
    pub fn config_and_data_dir(&self) -> anyhow::Result<(Config, PathBuf)> {
        let cfg = match &self.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| cfg.server.data_dir.clone());
        Ok((cfg, data_dir))
    }

    /// The cluster secret, as [`cluster_secret`] finds it.
    pub fn secret(&self, cfg: &Config, data_dir: &Path) -> anyhow::Result<String> {
        cluster_secret(self.cluster_secret.clone(), cfg, data_dir)
    }
}

/// Sends `req` to the server at `base` and reads its JSON answer; for a
/// refusal, an error saying why (the server's own message when it gave
/// one).
pub async fn answer<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
    base: &str,
) -> anyhow::Result<T> {
    let resp = req
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the server at {base}: {e}"))?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        anyhow::bail!("the server refused the cluster secret");
    }
    if !status.is_success() {
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => anyhow::bail!("{}", e.message),
            Err(_) => anyhow::bail!("the server answered {status}"),
        }
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// `veche admin` arguments.
#[derive(Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an account with a password (asked for, never a flag).
    CreateUser {
        /// The email the user signs in with.
        #[arg(long)]
        email: String,
        /// The name shown to others. Default: the part of the email
        /// before `@`.
        #[arg(long)]
        name: Option<String>,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input
        /// instead of prompting (for scripts).
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Reads the new password: the first line of stdin, or a prompt without
/// echo, asked twice.
fn read_password(from_stdin: bool, email: &str) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let pw = line.trim_end_matches(['\n', '\r']).to_owned();
        if pw.is_empty() {
            anyhow::bail!("no password on standard input");
        }
        return Ok(pw);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "standard input is not a terminal, so the password cannot be asked for; \
             pass --password-stdin and pipe it in"
        );
    }
    let pw = rpassword::prompt_password(format!("New password for {email}: "))?;
    let again = rpassword::prompt_password("The same password again: ")?;
    if pw != again {
        anyhow::bail!("the two passwords differ; nothing was created");
    }
    Ok(pw)
}

/// Runs `veche admin`.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let (cfg, data_dir) = args.server.config_and_data_dir()?;
    let secret = args.server.secret(&cfg, &data_dir)?;
    let base = base_url(&args.server.control_plane);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    match args.command {
        AdminCommand::CreateUser {
            email,
            name,
            admin,
            password_stdin,
        } => {
            let password = read_password(password_stdin, &email)?;
            let body = NewUser {
                email,
                display_name: name,
                password,
                is_admin: admin,
            };
            let user: UserView = answer(
                http.post(format!("{base}{ADMIN_CLUSTER_USERS}"))
                    .bearer_auth(&secret)
                    .json(&body),
                &base,
            )
            .await?;
            println!(
                "Created {} {} ({}), user id {}",
                if user.is_admin {
                    "administrator"
                } else {
                    "user"
                },
                user.email,
                user.display_name,
                user.id
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_secret_is_made_once_and_kept_private() {
        let dir = std::env::temp_dir().join(format!("veche-secret-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = local_secret(&dir).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(local_secret(&dir).unwrap(), a);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the secret file is readable by others");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
