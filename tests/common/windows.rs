//! Several windows of one headless Chromium, each driven as a page of its
//! own: one Chromium (and one chromedriver) can play several people, which
//! matters on a two-core machine. The windows share a profile (cookies and
//! localStorage), so a test orders its steps so that a signed-in window
//! never stands in for an anonymous one.
//!
//! A WebDriver session acts on one window at a time; every [`Window`]
//! method first switches to its window. Drive windows one after another,
//! never concurrently (no `join!` over two windows of one Chromium).

use crate::common::{secs, wait_for, Chrome, WebElement};
use serde_json::{json, Value};

/// The key of a W3C WebDriver element reference in JSON (the harness's own
/// copy is private to `common`).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One top-level window of a [`Chrome`].
pub struct Window<'a> {
    chrome: &'a Chrome,
    handle: String,
    /// Whose window it is, for messages ("Ann").
    pub label: String,
}

/// The window the browser opened with.
pub async fn first_window<'a>(chrome: &'a Chrome, label: &str) -> Window<'a> {
    let v = chrome
        .driver
        .command(reqwest::Method::GET, "/window", None)
        .await
        .unwrap_or_else(|e| panic!("the current window of {}: {e}", chrome.label));
    Window {
        chrome,
        handle: v.as_str().expect("a window handle").to_owned(),
        label: label.to_owned(),
    }
}

/// Opens a new top-level window (not a tab, so that it is never a hidden
/// background tab whose timers the browser throttles).
pub async fn open_window<'a>(chrome: &'a Chrome, label: &str) -> Window<'a> {
    let v = chrome
        .driver
        .post("/window/new", json!({ "type": "window" }))
        .await
        .unwrap_or_else(|e| panic!("a new window in {}: {e}", chrome.label));
    Window {
        chrome,
        handle: v["handle"].as_str().expect("a window handle").to_owned(),
        label: label.to_owned(),
    }
}

impl Window<'_> {
    /// Makes this window the one WebDriver commands act on.
    async fn focus(&self) -> Result<(), String> {
        self.chrome
            .driver
            .post("/window", json!({ "handle": self.handle }))
            .await
            .map(drop)
            .map_err(|e| format!("switching to {}'s window: {e}", self.label))
    }

    /// [`Chrome::js`] in this window.
    pub async fn js(&self, body: &str, args: Vec<Value>) -> Result<Value, String> {
        self.focus().await?;
        self.chrome.js(body, args).await
    }

    /// Navigates this window to `url`.
    pub async fn goto(&self, url: &str) {
        self.focus().await.unwrap_or_else(|e| panic!("{e}"));
        self.chrome.goto(url).await;
    }

    /// The visible text of the page.
    pub async fn text(&self) -> Result<String, String> {
        let v = self
            .js(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Clicks the button named `name`, as [`Chrome::click_button`].
    pub async fn click_button(&self, name: &str) {
        self.focus().await.unwrap_or_else(|e| panic!("{e}"));
        self.chrome.click_button(name).await;
    }

    /// Clicks the link whose text is `text` (WebDriver's "link text"
    /// locator, then a real click), waiting up to 10 s for it to appear.
    pub async fn click_link(&self, text: &str) {
        let what = format!("{}'s page has a link {text:?}", self.label);
        let link = wait_for(&what, secs(10), async || {
            self.focus().await?;
            let v = self
                .chrome
                .driver
                .post("/element", json!({ "using": "link text", "value": text }))
                .await?;
            v.get(ELEMENT_KEY)
                .and_then(Value::as_str)
                .map(|id| WebElement(id.to_owned()))
                .ok_or_else(|| format!("no such link (WebDriver said {v})"))
        })
        .await;
        self.chrome
            .click(&link)
            .await
            .unwrap_or_else(|e| panic!("{}: clicking the link {text:?}: {e}", self.label));
    }

    /// Empties the field matching `selector` named `name` and types `text`
    /// into it with real key events.
    pub async fn fill(&self, selector: &str, name: &str, text: &str) {
        self.focus().await.unwrap_or_else(|e| panic!("{e}"));
        let field = self.chrome.find_by_name(selector, name).await;
        self.chrome
            .driver
            .post(&format!("/element/{}/clear", field.0), json!({}))
            .await
            .unwrap_or_else(|e| panic!("{}: clearing {name:?}: {e}", self.label));
        self.chrome
            .type_into(&field, text)
            .await
            .unwrap_or_else(|e| panic!("{}: typing into {name:?}: {e}", self.label));
    }

    /// The value of the cookie `name` of this window's site, `HttpOnly`
    /// ones included (WebDriver sees them; page scripts do not).
    pub async fn cookie(&self, name: &str) -> Result<String, String> {
        self.focus().await?;
        let v = self
            .chrome
            .driver
            .command(reqwest::Method::GET, &format!("/cookie/{name}"), None)
            .await?;
        v["value"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no cookie {name}: {v}"))
    }
}
