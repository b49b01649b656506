//! A small W3C WebDriver client over reqwest (fantoccini is not used: see tests/README.md).

use super::*;
use serde_json::{json, Value};
use std::io::Read;

/// The key of a W3C WebDriver element reference in JSON.
pub(super) const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A page element, as a WebDriver element reference.
#[derive(Clone, Debug)]
pub struct WebElement(pub String);

/// A minimal W3C WebDriver client for chromedriver on loopback: plain HTTP
/// and JSON through reqwest.
///
/// (fantoccini's `rustls()` connector panics in this workspace: `rtc` turns
/// on rustls' `ring` provider and hyper-rustls its `aws-lc-rs` one, so
/// rustls cannot pick a default. Chromedriver needs no TLS anyway.)
#[derive(Clone, Debug)]
pub struct WebDriver {
    /// `http://127.0.0.1:PORT/session/ID`.
    pub(super) session_url: String,
}

impl WebDriver {
    /// Opens a session with `capabilities` on the chromedriver at `driver_url`.
    pub async fn new_session(driver_url: &str, capabilities: Value) -> Result<WebDriver, String> {
        let resp = http()
            .post(format!("{driver_url}/session"))
            .timeout(BROWSER_START_TIMEOUT)
            .json(&json!({ "capabilities": { "alwaysMatch": capabilities } }))
            .send()
            .await
            .map_err(|e| format!("POST /session: {e}"))?;
        let value = webdriver_value(resp).await?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {value}"))?;
        Ok(WebDriver {
            session_url: format!("{driver_url}/session/{id}"),
        })
    }

    /// One command: `method` on the session URL plus `path` (which is empty
    /// or starts with `/`), with a JSON body for POST. Returns `value`.
    pub async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.session_url);
        let mut req = http().request(method.clone(), &url).timeout(secs(60));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        webdriver_value(resp)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))
    }

    /// A POST command.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }
}

/// The `value` of a WebDriver response, or its error and message.
async fn webdriver_value(resp: reqwest::Response) -> Result<Value, String> {
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("HTTP {status} with a non-JSON body: {e}"))?;
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!(
            "{}: {}",
            value["error"].as_str().unwrap_or("error"),
            value["message"].as_str().unwrap_or_default()
        ))
    }
}

/// `DELETE /session/{id}` on chromedriver, with a plain blocking socket since
/// `Drop` cannot await. Best effort, bounded to a few seconds.
pub(super) fn delete_session_blocking(session_url: &str) {
    use std::io::Write;
    // session_url is http://127.0.0.1:PORT/session/ID.
    let Some((port, path)) = session_url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.split_once('/'))
    else {
        return;
    };
    let Ok(port) = port.parse::<u16>() else {
        return;
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(secs(10)));
    let _ = stream.set_write_timeout(Some(secs(2)));
    let request = format!(
        "DELETE /{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        // Chromedriver answers once Chromium has quit.
        let _ = stream.read(&mut [0u8; 512]);
    }
}
