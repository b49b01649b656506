//! Single sign-on against a real OpenID Connect provider on loopback
//! (npm `oidc-provider`, see `tests/common/oidc_provider.rs`): a person
//! signs in through the provider's real login page in Chromium and lands
//! back in Veche signed in; the admin group makes an administrator;
//! signing out ends the provider's session too; a login started on one
//! control-plane node finishes on another; and the flow's guards (state,
//! sealed pending cookie, return_to, a denial, a bogus code) refuse what
//! they must.
//!
//! Needs node with `npm ci` done in `tests/oidc-provider` (scripts/test.sh
//! does it), Debian's `chromium` and `chromium-driver`, and should run in
//! the loopback-only namespace scripts/test.sh creates:
//!
//! ```text
//! unshare -rn bash -c 'ip link set lo up; cargo test --test it oidc_sso:: -- --nocapture'
//! ```

use crate::common::oidc_provider::*;
use crate::common::*;
use serde_json::Value;
use std::time::Instant;
use veche_control_plane::oidc::pending::{PendingKey, PendingLogin, COOKIE_NAME};

const PROVIDER_NAME: &str = "Example SSO";

/// Veche configured for a provider, and the provider.
struct Setup {
    veche: Server,
    provider: Option<OidcProvider>,
    provider_port: u16,
    client_secret: String,
    cluster_secret: String,
}

impl Setup {
    /// Starts Veche configured with the provider's issuer, before the
    /// provider runs: Veche must start anyway and discover it later.
    fn veche_first() -> Setup {
        let provider_port = OidcProvider::pick_port();
        let issuer = format!("http://127.0.0.1:{provider_port}");
        let client_secret = veche_harness::random_hex(32);
        let cluster_secret = veche_harness::cluster_secret();
        let toml = format!(
            "[control_plane]\ncluster_secret = \"{cluster_secret}\"\n\n{}",
            oidc_config_toml(&issuer, &client_secret, PROVIDER_NAME)
        );
        let veche = Server::start_with_config(&toml);
        Setup {
            veche,
            provider: None,
            provider_port,
            client_secret,
            cluster_secret,
        }
    }

    fn start_provider(&mut self) {
        self.provider = Some(OidcProvider::start(
            self.provider_port,
            &self.client_secret,
            &self.veche.url("/auth/oidc/callback"),
            &self.veche.url("/"),
        ));
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.provider_port)
    }
}

/// A client that shows redirects instead of following them, and keeps no
/// cookies: each request says exactly which cookie it carries.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(secs(30))
        .build()
        .expect("reqwest client")
}

struct Answer {
    status: u16,
    location: Option<String>,
    cookies: Vec<String>,
    body: String,
}

async fn get(url: &str, cookie: Option<&str>) -> Answer {
    let mut req = raw_client().get(url).header("accept", "text/html");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let header = |name: &str| -> Vec<String> {
        resp.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    };
    let location = header("location").into_iter().next();
    let cookies = header("set-cookie");
    Answer {
        status: resp.status().as_u16(),
        location,
        cookies,
        body: resp.text().await.unwrap_or_default(),
    }
}

/// Starts a login; returns the pending cookie (`name=value`) and the
/// state sent to the provider.
async fn begin_login(veche: &Server) -> (String, String) {
    let a = get(&veche.url("/auth/oidc/login?return_to=/r/x"), None).await;
    assert_eq!(a.status, 303, "login answered {}: {}", a.status, a.body);
    let location = a.location.expect("a Location to the provider");
    let url = reqwest::Url::parse(&location).expect("an absolute provider URL");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let state = q.get("state").expect("a state").clone();
    let cookie = a
        .cookies
        .iter()
        .find(|c| c.starts_with(&format!("{COOKIE_NAME}=")))
        .expect("the pending-login cookie");
    let pair = cookie.split(';').next().unwrap().to_owned();
    (pair, state)
}

/// Asserts that an answer starts no session: the only cookie it sets is
/// the pending login's removal.
fn assert_no_session(a: &Answer) {
    for c in &a.cookies {
        assert!(
            c.starts_with(&format!("{COOKIE_NAME}=;")),
            "a refused callback set a cookie other than clearing the pending login: {c}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sso_flow_refuses_forged_state_expired_or_tampered_logins_foreign_return_to_and_denials(
) {
    let mut s = Setup::veche_first();
    let base = s.veche.base().to_owned();

    // Nothing about SSO breaks while the provider is down: the button's
    // data is there, and the login says plainly that it cannot go on.
    let me = http_get(&format!("{base}/api/me")).await.json();
    assert_eq!(me["sign_in"]["sso_provider"], PROVIDER_NAME, "{me}");
    assert_eq!(me["user"], Value::Null, "{me}");
    let down = get(&format!("{base}/auth/oidc/login"), None).await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(down.body.contains("not reachable"), "{}", down.body);

    // Once the provider runs, the same node discovers it.
    s.start_provider();
    let a = get(&format!("{base}/auth/oidc/login?return_to=/r/abc"), None).await;
    assert_eq!(a.status, 303, "{}", a.body);
    let location = a.location.clone().unwrap();
    assert!(
        location.starts_with(&format!("{}/auth?", s.issuer())),
        "{location}"
    );
    for part in [
        "response_type=code",
        "code_challenge_method=S256",
        "code_challenge=",
        "nonce=",
        "state=",
        "scope=openid+email+profile+groups",
    ] {
        assert!(location.contains(part), "{part} missing from {location}");
    }
    let cookie = &a.cookies[0];
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/auth/oidc"] {
        assert!(cookie.contains(attr), "{attr} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain-http site: {cookie}");

    let callback = |state: &str| format!("{base}/auth/oidc/callback?code=some-code&state={state}");

    // A pending cookie altered by the browser.
    let (pending, state) = begin_login(&s.veche).await;
    let (name, value) = pending.split_once('=').unwrap();
    let mut bytes = value.as_bytes().to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
    let a = get(&callback(&state), Some(&tampered)).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(a.body.contains("tampered"), "{}", a.body);
    assert_no_session(&a);

    // No pending cookie at all (another browser), and a state that is not
    // the pending login's (a forged callback).
    let a = get(&callback(&state), None).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert_no_session(&a);
    let a = get(&callback("forged-state"), Some(&pending)).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert_no_session(&a);

    // The right state and cookie with a code the provider never issued: the
    // provider refuses the exchange (invalid_grant), and so does Veche.
    let a = get(&callback(&state), Some(&pending)).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(a.body.contains("code exchange failed"), "{}", a.body);
    assert_no_session(&a);

    // A pending login past its time limit, sealed as a node would have.
    let expired = PendingKey::derive(&s.cluster_secret).seal(
        &PendingLogin {
            csrf_state: "st".into(),
            nonce: "n".into(),
            pkce_verifier: "v".repeat(43),
            return_to: "/".into(),
            expires_at_ms: now_ms() - 1,
        },
        [9; 12],
    );
    let a = get(&callback("st"), Some(&format!("{COOKIE_NAME}={expired}"))).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(a.body.contains("expired"), "{}", a.body);
    assert_no_session(&a);

    // return_to must be a path on this site.
    for foreign in ["//evil.example", "https://evil.example/", "/\\evil.example"] {
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/auth/oidc/login"),
            &[("return_to", foreign)],
        )
        .unwrap();
        let a = get(url.as_str(), None).await;
        assert_eq!(a.status, 400, "return_to={foreign}: {}", a.body);
        assert!(a.location.is_none(), "return_to={foreign} redirected");
        assert!(a.body.contains("return_to"), "{}", a.body);
    }

    // The provider sends the user back with a denial.
    let a = get(
        &format!("{base}/auth/oidc/callback?error=access_denied&state={state}"),
        Some(&pending),
    )
    .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("access was denied"), "{}", a.body);
    assert_no_session(&a);

    // A JSON client gets the API's error shape instead of a page.
    let r = raw_client()
        .get(callback("x"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized", "{body}");
}

/// `GET /api/me` in the page, with its cookies.
async fn me(b: &Chrome) -> Result<Value, String> {
    b.js(
        "const r = await fetch('/api/me', {headers: {accept: 'application/json'}}); \
         return {status: r.status, body: await r.json().catch(() => null)};",
        vec![],
    )
    .await
}

/// Fills the provider's login form and submits it.
async fn fill_provider_login(b: &Chrome, email: &str, password: &str) {
    let email_box = b.find_by_name("input", "Email").await;
    b.type_into(&email_box, email)
        .await
        .expect("type the email");
    let password_box = b.find_by_name("input", "Password").await;
    b.type_into(&password_box, password)
        .await
        .expect("type the password");
    b.click_button("Sign in").await;
}

/// Waits until the browser is back on Veche and `GET /api/me` names
/// `email`; returns that answer's `user`. If the page offers a "Sign out"
/// button (the home page's account controls), it must also show `name`.
async fn wait_signed_in(b: &Chrome, base: &str, email: &str, name: &str) -> Value {
    let what = format!(
        "{}'s browser is back on Veche signed in as {email}",
        b.label
    );
    wait_for(&what, secs(20), async || {
        let url = b.current_url().await?;
        if !url.starts_with(base) {
            return Err(format!("still at {url}"));
        }
        let m = me(b).await?;
        if m["body"]["user"]["email"] != email {
            return Err(format!("at {url}, /api/me says {m}"));
        }
        let page = b
            .js(
                "return {text: document.body.innerText, \
                 signOut: !!__byName('button, [role=\"button\"]', 'Sign out')};",
                vec![],
            )
            .await?;
        if page["signOut"] == true && !page["text"].as_str().unwrap_or_default().contains(name) {
            return Err(format!(
                "the page offers Sign out but does not show {name}: {page}"
            ));
        }
        Ok(m["body"]["user"].clone())
    })
    .await
}

/// Signs out as the page does: the "Sign out" button when the page has
/// one, else the same request the button makes (`POST /api/auth/logout`,
/// then to the provider's `logout_url`). Returns the `logout_url`
/// answered, if the API path was taken.
async fn sign_out(b: &Chrome) -> Option<String> {
    let has_button = b
        .js(
            "return !!__byName('button, [role=\"button\"]', 'Sign out');",
            vec![],
        )
        .await
        .unwrap_or_default();
    if has_button == true {
        b.click_button("Sign out").await;
        return None;
    }
    let v = b
        .js(
            "const r = await fetch('/api/auth/logout', {method: 'POST', \
             headers: {'content-type': 'application/json'}, body: '{}'}); \
             const body = await r.json(); \
             if (body.logout_url) location.assign(body.logout_url); \
             return {status: r.status, body};",
            vec![],
        )
        .await
        .expect("sign out");
    assert_eq!(v["status"], 200, "{v}");
    Some(
        v["body"]["logout_url"]
            .as_str()
            .unwrap_or_else(|| panic!("an SSO session's sign-out names the provider's logout: {v}"))
            .to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_through_the_providers_login_page_and_the_admin_group_makes_an_administrator(
) {
    let mut s = Setup::veche_first();
    s.start_provider();
    let base = s.veche.base().to_owned();
    let b = Chrome::start("Alice").await;
    dump_on_failure(&[&b], async {
        b.goto(&format!("{base}/")).await;
        let button_name = format!("Sign in with {PROVIDER_NAME}");
        let button = b
            .find_by_name("button, [role=\"button\"], a", &button_name)
            .await;

        // Alice, in the admin group.
        let clicked = Instant::now();
        b.click(&button).await.expect("click the SSO button");
        let email_box = b.find_by_name("input", "Email").await;
        let at_provider = clicked.elapsed();
        let url = b.current_url().await.unwrap();
        assert!(
            url.starts_with(&s.issuer()),
            "the login page is the provider's: {url}"
        );
        let (email, password, name) = ALICE;
        b.type_into(&email_box, email).await.unwrap();
        let password_box = b.find_by_name("input", "Password").await;
        b.type_into(&password_box, password).await.unwrap();
        let submitted = Instant::now();
        b.click_button("Sign in").await;
        let user = wait_signed_in(&b, &base, email, name).await;
        let back = submitted.elapsed();
        let total = clicked.elapsed();
        eprintln!(
            "[measure] SSO sign-in: click to provider login page {:.0} ms; \
             submit at provider to signed in on Veche {:.0} ms; \
             click to signed in (including typing) {:.0} ms",
            at_provider.as_secs_f64() * 1e3,
            back.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3
        );
        assert_eq!(user["display_name"], name, "{user}");
        assert_eq!(user["sso"], true, "{user}");
        assert_eq!(user["is_admin"], true, "Alice is in {ADMIN_GROUP}: {user}");

        // Signed in, she creates a meeting from the home page and is shown
        // as its owner: the owner's "Guest passes" control, and the room's
        // owner is her account.
        let name_box = b.find_by_name("input", "Meeting name").await;
        b.type_into(&name_box, "SSO standup").await.unwrap();
        b.click_button("Create meeting").await;
        let slug = wait_for("the new meeting's page is open", secs(20), async || {
            let url = b.current_url().await?;
            match url.split_once("/r/") {
                Some((_, slug)) if !slug.is_empty() => Ok(slug.to_owned()),
                _ => Err(format!("at {url}")),
            }
        })
        .await;
        wait_for(
            "the owner's Guest passes button is visible",
            secs(20),
            async || {
                let v = b
                .js(
                    "const el = __byName('button', 'Guest passes'); return !!el && __visible(el);",
                    vec![],
                )
                .await?;
                if v == true {
                    Ok(())
                } else {
                    Err("not visible".to_owned())
                }
            },
        )
        .await;
        let room = b
            .js(
                "const r = await fetch('/api/rooms/' + arguments[0]); \
                 return {status: r.status, body: await r.json()};",
                vec![Value::String(slug.clone())],
            )
            .await
            .unwrap();
        assert_eq!(room["status"], 200, "{room}");
        assert_eq!(room["body"]["owner_name"], name, "{room}");
        assert_eq!(room["body"]["you_own"], true, "{room}");
        b.goto(&format!("{base}/")).await;

        // Signing out ends the Veche session and the provider's (RP-initiated
        // logout), so the next person at this browser signs in as themselves.
        if let Some(logout_url) = sign_out(&b).await {
            assert!(
                logout_url.starts_with(&format!("{}/session/end?", s.issuer()))
                    && logout_url.contains("client_id="),
                "{logout_url}"
            );
        }
        wait_for(
            "the provider asks to confirm signing out",
            secs(20),
            async || {
                let url = b.current_url().await?;
                if url.starts_with(&s.issuer()) {
                    Ok(())
                } else {
                    Err(format!("at {url}"))
                }
            },
        )
        .await;
        b.click_button("Yes, sign me out").await;
        wait_for(
            "the browser is back on Veche, signed out",
            secs(20),
            async || {
                let url = b.current_url().await?;
                if !url.starts_with(&base) {
                    return Err(format!("at {url}"));
                }
                let m = me(&b).await?;
                if m["status"] == 200 && m["body"]["user"].is_null() {
                    Ok(())
                } else {
                    Err(format!("/api/me: {m}"))
                }
            },
        )
        .await;

        // Bob, in no group: signed in, not an administrator.
        let button = b
            .find_by_name("button, [role=\"button\"], a", &button_name)
            .await;
        b.click(&button).await.unwrap();
        let (email, password, name) = BOB;
        fill_provider_login(&b, email, password).await;
        let user = wait_signed_in(&b, &base, email, name).await;
        assert_eq!(user["is_admin"], false, "Bob is in no group: {user}");
    })
    .await;
    b.close().await;
}

/// Starts `veche control-plane` node `id` of a two-node cluster on
/// 127.0.0.1 (both nodes on one host, so the browser sends the same
/// cookies to both), with `config`.
fn start_cp_node(
    id: u64,
    ports: [u16; 2],
    secret: &str,
    config: &std::path::Path,
    dir: &TempDir,
) -> veche_harness::Process {
    let peers = format!("1=127.0.0.1:{},2=127.0.0.1:{}", ports[0], ports[1]);
    let port = ports[id as usize - 1];
    let mut p = veche_harness::Launch::new(format!("cp-{id}"), VECHE)
        .env("VECHE_CLUSTER_SECRET", secret)
        .arg("control-plane")
        .args([
            "--id",
            &id.to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--peers", &peers, "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(dir.path().join(format!("cp{id}")))
        .ready(veche_harness::Ready::Line(format!(
            "Control-plane node {id} is running at"
        )))
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    p.ready_blocking(SERVER_START_TIMEOUT)
        .unwrap_or_else(|e| panic!("control-plane node {id} did not start: {e}"));
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_started_on_one_control_plane_node_finishes_on_another() {
    // Two control-plane nodes behind one public URL, which is node 2's: the
    // browser starts the login on node 1, and the provider sends it back
    // to node 2, which must open node 1's sealed pending login.
    let ports = [free_port(), free_port()];
    let provider_port = OidcProvider::pick_port();
    let issuer = format!("http://127.0.0.1:{provider_port}");
    let client_secret = veche_harness::random_hex(32);
    let secret = veche_harness::cluster_secret();
    let dir = TempDir::new("oidc-cluster");
    let node2 = format!("http://127.0.0.1:{}", ports[1]);
    let config = dir.path().join("veche.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\npublic_url = \"{node2}\"\n\n{}",
            oidc_config_toml(&issuer, &client_secret, PROVIDER_NAME)
        ),
    )
    .unwrap();
    let _cp1 = start_cp_node(1, ports, &secret, &config, &dir);
    let _cp2 = start_cp_node(2, ports, &secret, &config, &dir);
    let node1 = format!("http://127.0.0.1:{}", ports[0]);
    let _provider = OidcProvider::start(
        provider_port,
        &client_secret,
        &format!("{node2}/auth/oidc/callback"),
        &format!("{node2}/"),
    );
    wait_for(
        "the two-node cluster answers /api/me",
        secs(30),
        async || {
            let r = http().get(format!("{node1}/api/me")).send().await;
            match r {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("status {}", r.status())),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await;

    let b = Chrome::start("Bob").await;
    dump_on_failure(&[&b], async {
        b.goto(&format!("{node1}/auth/oidc/login?return_to=/"))
            .await;
        let (email, password, name) = BOB;
        fill_provider_login(&b, email, password).await;
        let user = wait_signed_in(&b, &node2, email, name).await;
        assert_eq!(user["is_admin"], false, "{user}");
        // The session is the cluster's, not node 2's: node 1 knows it too.
        b.goto(&format!("{node1}/")).await;
        let m = me(&b).await.unwrap();
        assert_eq!(
            m["body"]["user"]["email"], email,
            "node 1 sees the session: {m}"
        );
    })
    .await;
    b.close().await;
}
