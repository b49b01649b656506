//! Signing in through the form in real Chromium: the home page's "Sign in"
//! link, the sign-in page, back home with "Sign out" and "Profile", the
//! profile page, and signing out.
//!
//! Needs Debian's `chromium` and `chromium-driver`, and should run in the
//! loopback-only namespace `scripts/test.sh` creates.

use crate::common::accounts::*;
use crate::common::*;
use serde_json::{json, Value};

/// How long a page may take to show what it should.
const PAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Finds a link or button by its accessible name (its text) and returns
/// whether it is there; with `click`, clicks it.
const CONTROL: &str = r#"
  const [name, click] = arguments;
  const el = [...document.querySelectorAll('a, button')]
    .find((e) => e.textContent.trim() === name && !e.closest('[hidden]'));
  if (el && click) el.click();
  return !!el;
"#;

async fn has_control(b: &Chrome, name: &str) -> Result<(), String> {
    match b.js(CONTROL, vec![json!(name), json!(false)]).await? {
        Value::Bool(true) => Ok(()),
        _ => Err(format!(
            "no control named {name:?} at {}",
            b.current_url().await.unwrap_or_default()
        )),
    }
}

async fn click(b: &Chrome, name: &str) {
    wait_for(
        &format!("{name:?} can be clicked"),
        PAGE_TIMEOUT,
        async || match b.js(CONTROL, vec![json!(name), json!(true)]).await? {
            Value::Bool(true) => Ok(()),
            _ => Err(format!("no control named {name:?}")),
        },
    )
    .await;
}

#[tokio::test]
async fn a_user_signs_in_through_the_form_and_sees_sign_out() {
    let server = Server::start();
    cli_create_user_ok(&server, "ada@example.com", false);
    let b = Chrome::start("ada").await;
    b.goto(&server.url("/")).await;
    click(&b, "Sign in").await;
    wait_for(
        "the sign-in page shows its form",
        PAGE_TIMEOUT,
        async || {
            let url = b.current_url().await?;
            let ready = b
                .js("return !!document.getElementById('signin-form');", vec![])
                .await?;
            if url.ends_with("/signin") && ready == Value::Bool(true) {
                Ok(())
            } else {
                Err(format!("at {url}"))
            }
        },
    )
    .await;

    // A wrong password first: the page says so plainly.
    let fill = r#"
      const [email, password] = arguments;
      document.getElementById('email').value = email;
      document.getElementById('password').value = password;
      document.getElementById('signin-button').click();
      return true;
    "#;
    b.js(
        fill,
        vec![json!("ada@example.com"), json!("not my password")],
    )
    .await
    .expect("fill the form");
    wait_for("the page shows the refusal", PAGE_TIMEOUT, async || {
        let text = b
            .js(
                "const e = document.getElementById('signin-error'); \
                 return e && !e.hidden ? e.textContent : '';",
                vec![],
            )
            .await?;
        if text == "Wrong email or password" {
            Ok(())
        } else {
            Err(format!("error line: {text}"))
        }
    })
    .await;

    b.js(fill, vec![json!("ada@example.com"), json!(GOOD_PASSWORD)])
        .await
        .expect("fill the form");
    wait_for(
        "the home page offers Sign out and Profile",
        PAGE_TIMEOUT,
        async || {
            let url = b.current_url().await?;
            if !url.ends_with('/') || url.ends_with("/signin") {
                return Err(format!("at {url}"));
            }
            has_control(&b, "Sign out").await?;
            has_control(&b, "Profile").await
        },
    )
    .await;

    click(&b, "Profile").await;
    wait_for("the profile page shows the user", PAGE_TIMEOUT, async || {
        let v = b
            .js(
                "const h = document.querySelector('h1'); \
                 return [h ? h.textContent : '', document.getElementById('display-name')?.value ?? ''];",
                vec![],
            )
            .await?;
        if v == json!(["Profile", "ada"]) {
            Ok(())
        } else {
            Err(format!("{v}"))
        }
    })
    .await;

    b.goto(&server.url("/")).await;
    click(&b, "Sign out").await;
    wait_for(
        "the home page offers Sign in again",
        PAGE_TIMEOUT,
        async || has_control(&b, "Sign in").await,
    )
    .await;
    b.close().await;
}
