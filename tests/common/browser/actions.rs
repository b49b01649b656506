//! Acting on a browser's page as a user would: finding an element by its
//! accessible name, clicking it, typing into it, sending a chat message.

use super::Chrome;
use crate::common::{secs, wait_for, WebElement, ELEMENT_KEY};
use serde_json::{json, Value};

impl Chrome {
    /// Waits up to 10 s for an element matching `selector` with accessible
    /// name `name` to appear, and returns it as a WebDriver element.
    pub async fn find_by_name(&self, selector: &str, name: &str) -> WebElement {
        let what = format!("{}'s page has {selector} named {name:?}", self.label);
        let found = wait_for(&what, secs(10), async || {
            let v = self
                .js(
                    "return __byName(arguments[0], arguments[1]);",
                    vec![json!(selector), json!(name)],
                )
                .await?;
            match v.get(ELEMENT_KEY).and_then(Value::as_str) {
                Some(id) => Ok(WebElement(id.to_owned())),
                None => Err(format!("no such element yet (script returned {v})")),
            }
        })
        .await;
        found
    }

    /// Clicks `element` as a user would: WebDriver scrolls it into view and
    /// refuses if it is hidden, covered or disabled.
    pub async fn click(&self, element: &WebElement) -> Result<(), String> {
        self.driver
            .post(&format!("/element/{}/click", element.0), json!({}))
            .await
            .map(drop)
    }

    /// Keeps the owner key of room `slug` where the home page keeps an
    /// anonymous creator's (localStorage `veche.ownerKey.{slug}`, on the
    /// home page's origin), so this browser opens the room as its owner.
    pub async fn keep_owner_key(&self, base: &str, slug: &str, key: &str) {
        self.goto(&format!("{base}/")).await;
        self.js(
            "localStorage.setItem('veche.ownerKey.' + arguments[0], arguments[1]); return true;",
            vec![json!(slug), json!(key)],
        )
        .await
        .unwrap_or_else(|e| panic!("{}: storing the owner key: {e}", self.label));
    }

    /// Types `text` into `element` with real key events.
    pub async fn type_into(&self, element: &WebElement, text: &str) -> Result<(), String> {
        self.driver
            .post(
                &format!("/element/{}/value", element.0),
                json!({ "text": text }),
            )
            .await
            .map(drop)
    }

    /// Clicks the button whose `aria-label` or text is `name`, the way a
    /// user would (a WebDriver click, so it must be visible and enabled).
    pub async fn click_button(&self, name: &str) {
        let button = self
            .find_by_name(
                "button, [role=\"button\"], input[type=\"button\"], input[type=\"submit\"]",
                name,
            )
            .await;
        self.click(&button)
            .await
            .unwrap_or_else(|e| panic!("{}: clicking {name:?} failed: {e}", self.label));
    }

    /// Types `text` into the textbox named "Chat message" and clicks "Send".
    /// If the chat sits in a closed panel, first clicks "Chat" to open it,
    /// as a user would.
    pub async fn send_chat(&self, text: &str) {
        const TEXTBOX: &str = "input, textarea, [contenteditable=\"true\"], [role=\"textbox\"]";
        let visible = async || {
            let v = self
                .js(
                    "const el = __byName(arguments[0], arguments[1]); \
                     return !!el && __visible(el);",
                    vec![json!(TEXTBOX), json!("Chat message")],
                )
                .await?;
            match v.as_bool() {
                Some(true) => Ok(()),
                _ => Err("the \"Chat message\" textbox is not visible".to_owned()),
            }
        };
        if visible().await.is_err() {
            self.click_button("Chat").await;
            let what = format!(
                "{}'s chat textbox is visible after clicking Chat",
                self.label
            );
            wait_for(&what, secs(10), visible).await;
        }
        let input = self.find_by_name(TEXTBOX, "Chat message").await;
        self.type_into(&input, text)
            .await
            .unwrap_or_else(|e| panic!("{}: typing into the chat failed: {e}", self.label));
        self.click_button("Send").await;
    }
}
