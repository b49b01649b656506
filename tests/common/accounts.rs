//! Accounts from outside: a client that keeps one session cookie, as a
//! browser does, and `veche admin create-user` run against a server.

use crate::common::{http, Server, VECHE};
use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "veche_session";
/// A password the strength check accepts.
pub const GOOD_PASSWORD: &str = "tangerine ocelot gravel lantern";

/// An answer with its headers.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON; panics, showing the body, if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected JSON with status {}, got {e}: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header's value, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error in the API's shape with this status and code, and
    /// returns its message.
    pub fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "wrong status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let v = self.json();
        assert_eq!(v["code"], code, "wrong error code in {v}");
        let m = v["message"].as_str().unwrap_or_default().to_owned();
        assert!(!m.trim().is_empty(), "an error without a message: {v}");
        m
    }
}

/// A client with one cookie jar of one cookie: the session.
pub struct Visitor {
    base: String,
    /// The session cookie's value, once a response set one.
    pub session: Option<String>,
}

impl Visitor {
    /// An anonymous visitor of `base`.
    pub fn new(base: &str) -> Visitor {
        Visitor {
            base: base.to_owned(),
            session: None,
        }
    }

    /// Sends `method path` with an optional body and content type; keeps a
    /// session cookie the answer sets (an empty one clears it).
    pub async fn send(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Answer {
        let url = format!("{}{path}", self.base);
        let mut req = http().request(method.clone(), &url);
        if let Some(s) = &self.session {
            req = req.header(COOKIE, format!("{SESSION_COOKIE}={s}"));
        }
        if let Some((bytes, content_type)) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.expect("read body").to_vec();
        for v in headers.get_all(SET_COOKIE) {
            let v = v.to_str().unwrap_or_default();
            if let Some(rest) = v.strip_prefix(&format!("{SESSION_COOKIE}=")) {
                let value = rest.split(';').next().unwrap_or_default();
                self.session = (!value.is_empty()).then(|| value.to_owned());
            }
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// `method path` with a JSON body.
    pub async fn json(&mut self, method: reqwest::Method, path: &str, body: &Value) -> Answer {
        let bytes = serde_json::to_vec(body).expect("JSON");
        self.send(method, path, Some((bytes, "application/json")))
            .await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&mut self, path: &str, body: &Value) -> Answer {
        self.json(reqwest::Method::POST, path, body).await
    }

    /// Signs in; returns the answer (the cookie is kept if it succeeded).
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Answer {
        self.post(
            "/api/auth/login",
            &serde_json::json!({"email": email, "password": password}),
        )
        .await
    }

    /// Signs in and panics unless it worked.
    pub async fn sign_in_ok(&mut self, email: &str, password: &str) -> Value {
        let a = self.sign_in(email, password).await;
        assert_eq!(
            a.status,
            200,
            "sign-in of {email} failed: {}",
            String::from_utf8_lossy(&a.body)
        );
        a.json()
    }

    /// `GET /api/me`'s user (`Value::Null` when anonymous).
    pub async fn me(&mut self) -> Value {
        let a = self.get("/api/me").await;
        assert_eq!(a.status, 200, "{:?}", String::from_utf8_lossy(&a.body));
        a.json()["user"].clone()
    }
}

/// What `veche admin create-user` did.
#[derive(Debug)]
pub struct CliRun {
    /// Exit status was success.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `veche admin create-user` against `server`, the password on
/// standard input, the cluster secret from the server's data directory
/// (as an operator on the server's machine would).
pub fn cli_create_user(server: &Server, email: &str, password: &str, admin: bool) -> CliRun {
    let mut cmd = Command::new(VECHE);
    cmd.args(["admin", "create-user", "--email", email, "--password-stdin"])
        .args(["--control-plane", server.base()])
        .arg("--data-dir")
        .arg(server.data_dir())
        .env_remove("VECHE_CLUSTER_SECRET")
        .env_remove("VECHE_CONTROL_PLANE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if admin {
        cmd.arg("--admin");
    }
    let mut child = cmd.spawn().expect("run veche admin create-user");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("write password");
    let out = child.wait_with_output().expect("veche admin exits");
    CliRun {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Creates a user with the CLI and panics unless it worked.
pub fn cli_create_user_ok(server: &Server, email: &str, admin: bool) {
    let run = cli_create_user(server, email, GOOD_PASSWORD, admin);
    assert!(run.ok, "veche admin create-user failed: {run:?}");
}

/// A real 1×1 PNG.
pub const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];
