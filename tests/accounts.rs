//! Accounts over real HTTP against a running `veche serve`: the first
//! administrator made with `veche admin create-user`, signing in and out,
//! guessing limits, weak passwords, deleted accounts, avatars, who may
//! manage users, and a restart.

use crate::common::accounts::*;
use crate::common::*;
use reqwest::Method;
use serde_json::json;

const ADMIN: &str = "ada@example.com";

/// A server with an administrator (`ADMIN`) made by the CLI, and that
/// administrator signed in.
async fn server_with_admin() -> (Server, Visitor) {
    let server = Server::start();
    cli_create_user_ok(&server, ADMIN, true);
    let mut admin = Visitor::new(server.base());
    admin.sign_in_ok(ADMIN, GOOD_PASSWORD).await;
    (server, admin)
}

/// Has `admin` create a (non-admin) user with [`GOOD_PASSWORD`].
async fn create_user(admin: &mut Visitor, email: &str) -> serde_json::Value {
    let a = admin
        .post(
            "/api/admin/users",
            &json!({"email": email, "display_name": "Bob Builder", "password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    a.json()
}

#[tokio::test]
async fn the_cli_makes_an_administrator_who_signs_in_with_an_http_only_lax_cookie() {
    let server = Server::start();
    let run = cli_create_user(&server, ADMIN, GOOD_PASSWORD, true);
    assert!(run.ok, "{run:?}");
    assert!(run.stdout.contains("Created administrator"), "{run:?}");

    let mut v = Visitor::new(server.base());
    assert!(v.me().await.is_null(), "anonymous before signing in");
    let a = v.sign_in(ADMIN, GOOD_PASSWORD).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let cookie = a.header("set-cookie").expect("a session cookie").to_owned();
    assert!(
        cookie.starts_with(&format!("{SESSION_COOKIE}=")),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert_eq!(a.json()["user"]["email"], ADMIN);

    let me = v.me().await;
    assert_eq!(me["email"], ADMIN);
    assert_eq!(me["is_admin"], true);

    // Without a terminal and without --password-stdin there is no way to
    // ask for a password, and no default: it refuses rather than hang.
    let out = std::process::Command::new(VECHE)
        .args(["admin", "create-user", "--email", "bob@example.com"])
        .args(["--control-plane", server.base()])
        .arg("--data-dir")
        .arg(server.data_dir())
        .env_remove("VECHE_CLUSTER_SECRET")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run veche admin");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--password-stdin"), "{err}");

    // The same email again is refused, and says so.
    let again = cli_create_user(&server, ADMIN, GOOD_PASSWORD, false);
    assert!(!again.ok);
    assert!(again.stderr.contains("already exists"), "{again:?}");
}

#[tokio::test]
async fn wrong_passwords_get_one_clear_message_then_429_even_with_the_right_one() {
    let (server, _admin) = server_with_admin().await;
    let mut v = Visitor::new(server.base());
    let unknown = v.sign_in("nobody@example.com", GOOD_PASSWORD).await;
    let m = unknown.error(401, "unauthorized");
    assert_eq!(m, "Wrong email or password");
    // The administrator's own sign-in above cleared nothing for a guesser:
    // five wrong passwords for the account...
    for i in 0..veche_protocol::limits::accounts::LOGIN_FAILURES_PER_ACCOUNT {
        let a = v.sign_in(ADMIN, &format!("wrong password {i}")).await;
        assert_eq!(a.error(401, "unauthorized"), "Wrong email or password");
        assert!(v.session.is_none());
    }
    // ...and now even the right one is refused, with when to come back.
    let a = v.sign_in(ADMIN, GOOD_PASSWORD).await;
    let m = a.error(429, "rate_limited");
    assert!(
        m.contains("Too many failed sign-ins for this account"),
        "{m}"
    );
    assert!(m.contains("15 minutes"), "{m}");
    let retry: u64 = a
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((800..=900).contains(&retry), "Retry-After {retry}");
    assert!(v.session.is_none(), "a blocked sign-in set a cookie");
}

#[tokio::test]
async fn a_weak_password_is_refused_with_the_reason() {
    let (server, mut admin) = server_with_admin().await;
    let a = admin
        .post(
            "/api/admin/users",
            &json!({"email": "bob@example.com", "password": "password123"}),
        )
        .await;
    let m = a.error(400, "bad_request");
    assert!(m.contains("too easy to guess"), "{m}");
    assert!(m.to_lowercase().contains("common"), "{m}");

    let short = admin
        .post(
            "/api/admin/users",
            &json!({"email": "bob@example.com", "password": "Xq7#a"}),
        )
        .await;
    assert!(short.error(400, "bad_request").contains("at least 10"));

    let run = cli_create_user(&server, "carol@example.com", "qwertyuiop", false);
    assert!(!run.ok);
    assert!(run.stderr.contains("too easy to guess"), "{run:?}");
}

#[tokio::test]
async fn a_deleted_accounts_session_stops_working() {
    let (server, mut admin) = server_with_admin().await;
    let bob = create_user(&mut admin, "bob@example.com").await;
    let mut b = Visitor::new(server.base());
    b.sign_in_ok("bob@example.com", GOOD_PASSWORD).await;
    assert_eq!(b.get("/api/profile").await.status, 200);

    let id = bob["id"].as_u64().expect("id");
    let del = admin
        .send(Method::DELETE, &format!("/api/admin/users/{id}"), None)
        .await;
    assert_eq!(del.status, 200);
    assert_eq!(del.json()["removed"], true);

    assert!(
        b.me().await.is_null(),
        "the deleted user is still signed in"
    );
    b.get("/api/profile").await.error(401, "unauthorized");
    b.sign_in("bob@example.com", GOOD_PASSWORD)
        .await
        .error(401, "unauthorized");
}

#[tokio::test]
async fn signing_out_everywhere_ends_the_other_sessions() {
    let (server, _admin) = server_with_admin().await;
    let mut laptop = Visitor::new(server.base());
    let mut phone = Visitor::new(server.base());
    laptop.sign_in_ok(ADMIN, GOOD_PASSWORD).await;
    phone.sign_in_ok(ADMIN, GOOD_PASSWORD).await;

    let a = laptop.post("/api/auth/logout-all", &json!({})).await;
    assert_eq!(a.status, 200);
    assert!(a.json()["sessions_ended"].as_u64().unwrap() >= 2);
    assert!(phone.me().await.is_null(), "the phone is still signed in");
    assert!(laptop.session.is_none(), "the cookie was not cleared");
    phone
        .post("/api/auth/logout-all", &json!({}))
        .await
        .error(401, "unauthorized");
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    let (server, mut admin) = server_with_admin().await;
    let mut other = Visitor::new(server.base());
    other.sign_in_ok(ADMIN, GOOD_PASSWORD).await;
    let new = "velvet hammock orbit quince";
    admin
        .json(
            Method::PUT,
            "/api/profile/password",
            &json!({"current": "not it at all", "new": new}),
        )
        .await
        .error(401, "unauthorized");
    let a = admin
        .json(
            Method::PUT,
            "/api/profile/password",
            &json!({"current": GOOD_PASSWORD, "new": new}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(admin.me().await["email"], ADMIN, "this browser stays in");
    assert!(other.me().await.is_null(), "the other session survived");
    Visitor::new(server.base())
        .sign_in(ADMIN, GOOD_PASSWORD)
        .await
        .error(401, "unauthorized");
    Visitor::new(server.base()).sign_in_ok(ADMIN, new).await;
}

#[tokio::test]
async fn avatars_are_checked_by_content_and_served_back_with_their_type() {
    let (_server, mut v) = server_with_admin().await;
    let upload = |bytes: Vec<u8>, ct: &'static str| (bytes, ct);

    let a = v
        .send(
            Method::POST,
            "/api/profile/avatar",
            Some(upload(PNG_1X1.to_vec(), "text/plain")),
        )
        .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let url = a.json()["avatar_url"]
        .as_str()
        .expect("avatar_url")
        .to_owned();
    let img = v.get(&url).await;
    assert_eq!(img.status, 200);
    assert_eq!(img.header("content-type"), Some("image/png"));
    assert_eq!(img.header("x-content-type-options"), Some("nosniff"));
    assert!(img
        .header("cache-control")
        .is_some_and(|c| c.contains("max-age")));
    assert_eq!(img.body, PNG_1X1);
    assert_eq!(v.me().await["avatar_url"], url.as_str());

    // A text file, whatever it is called or declared as.
    let text = v
        .send(
            Method::POST,
            "/api/profile/avatar",
            Some(upload(b"I am not a picture.png".to_vec(), "image/png")),
        )
        .await;
    assert!(text
        .error(400, "bad_request")
        .contains("not a PNG, JPEG or WebP"));
    // A JPEG signature in front of garbage.
    let mut fake = vec![0xFF, 0xD8, 0xFF, 0xE0];
    fake.extend_from_slice(&[0x13; 200]);
    let garbage = v
        .send(
            Method::POST,
            "/api/profile/avatar",
            Some(upload(fake, "image/jpeg")),
        )
        .await;
    assert!(garbage.error(400, "bad_request").contains("damaged"));
    // Over 1 MB.
    let mut big = PNG_1X1.to_vec();
    big.resize(1024 * 1024 + 10, 0);
    let big = v
        .send(
            Method::POST,
            "/api/profile/avatar",
            Some(upload(big, "image/png")),
        )
        .await;
    assert!(big.error(413, "too_large").contains("1 MB"));
    // The refusals left the picture as it was; removing it works.
    assert_eq!(v.me().await["avatar_url"], url.as_str());
    let del = v.send(Method::DELETE, "/api/profile/avatar", None).await;
    assert_eq!(del.status, 200);
    assert!(v.me().await["avatar_url"].is_null());
    assert_eq!(v.get(&url).await.status, 404);
}

#[tokio::test]
async fn only_administrators_see_and_manage_users() {
    let (server, mut admin) = server_with_admin().await;
    create_user(&mut admin, "bob@example.com").await;
    Visitor::new(server.base())
        .get("/api/admin/users")
        .await
        .error(401, "unauthorized");
    let mut bob = Visitor::new(server.base());
    bob.sign_in_ok("bob@example.com", GOOD_PASSWORD).await;
    bob.get("/api/admin/users").await.error(403, "forbidden");
    bob.post(
        "/api/admin/users",
        &json!({"email": "eve@example.com", "password": GOOD_PASSWORD, "is_admin": true}),
    )
    .await
    .error(403, "forbidden");

    let list = admin.get("/api/admin/users").await;
    assert_eq!(list.status, 200);
    let emails: Vec<String> = list.json()["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["email"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(emails, vec![ADMIN, "bob@example.com"]);

    // Making Bob an administrator lets him in.
    let bob_id = bob.me().await["id"].as_u64().unwrap();
    let a = admin
        .json(
            Method::PUT,
            &format!("/api/admin/users/{bob_id}"),
            &json!({"is_admin": true}),
        )
        .await;
    assert_eq!(a.json()["is_admin"], true);
    assert_eq!(bob.get("/api/admin/users").await.status, 200);
}

#[tokio::test]
async fn malformed_json_is_a_400_with_a_clear_message() {
    let (server, mut admin) = server_with_admin().await;
    let mut v = Visitor::new(server.base());
    let a = v
        .send(
            Method::POST,
            "/api/auth/login",
            Some((b"{\"email\": ".to_vec(), "application/json")),
        )
        .await;
    assert!(a.error(400, "bad_request").contains("invalid request body"));
    // A sign-in posted by another site's page is refused (login CSRF).
    let url = format!("{}/api/auth/login", server.base());
    let resp = http()
        .post(&url)
        .header("origin", "https://evil.example")
        .json(&json!({"email": ADMIN, "password": GOOD_PASSWORD}))
        .send()
        .await
        .expect("POST login");
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.headers().get("set-cookie").is_none());
    let a = admin
        .json(Method::PUT, "/api/profile", &json!({"name": "wrong field"}))
        .await;
    assert!(a.error(400, "bad_request").contains("display_name"));
    let a = admin
        .json(Method::PUT, "/api/profile", &json!({"display_name": "  "}))
        .await;
    assert!(a.error(400, "bad_request").contains("must not be empty"));
    let a = admin
        .json(
            Method::PUT,
            "/api/profile",
            &json!({"display_name": " Ada Lovelace "}),
        )
        .await;
    assert_eq!(a.json()["display_name"], "Ada Lovelace");
}

#[tokio::test]
async fn accounts_and_sessions_survive_a_full_restart() {
    let (mut server, mut admin) = server_with_admin().await;
    create_user(&mut admin, "bob@example.com").await;
    let cookie = admin.session.clone();
    server.restart();

    let mut again = Visitor::new(server.base());
    again.session = cookie;
    assert_eq!(again.me().await["email"], ADMIN, "the session was lost");
    let mut bob = Visitor::new(server.base());
    bob.sign_in_ok("bob@example.com", GOOD_PASSWORD).await;
    assert_eq!(bob.me().await["display_name"], "Bob Builder");
    // The cluster secret the CLI reads was kept, too.
    cli_create_user_ok(&server, "carol@example.com", false);
}
