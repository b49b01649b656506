//! Room covers over real HTTP: only the owner sets them, every refusal
//! says what is wrong, valid images of each type are served back, and a
//! cover survives a restart of the control plane. Run with
//! `cargo test -p veche-control-plane --lib access_tests::covers`.

use super::harness::{As, Cp};
use super::slug;
use crate::admission::RoomCreation;
use crate::covers::tests::encoded;
use crate::{ControlPlane, ControlPlaneConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use veche_protocol::account::SESSION_COOKIE;
use veche_protocol::cover::CoverKind;
use veche_protocol::limits::covers::MAX_BYTES;
use veche_protocol::pass::OWNER_KEY_HEADER;

/// `PUT`s `body` as the cover image of `slug`, declared as `content_type`.
async fn upload(
    base: &str,
    slug: &str,
    who: &As,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .put(format!("{base}/api/rooms/{slug}/cover/image"))
        .header("content-type", content_type)
        .body(body);
    if let Some(c) = &who.cookie {
        req = req.header("cookie", format!("{SESSION_COOKIE}={c}"));
    }
    if let Some(k) = &who.owner_key {
        req = req.header(OWNER_KEY_HEADER, k);
    }
    let resp = req.send().await.expect("the control plane answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The refusal's status and message.
fn refused(reply: (u16, Value)) -> (u16, String) {
    (
        reply.0,
        reply.1["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn only_the_owner_may_set_or_remove_a_cover() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (_, ada) = cp.user("ada@example.test", "Ada").await;
    let (_, bob) = cp.user("bob@example.test", "Bob").await;
    let room = cp.room(&ada, "open").await;
    let s = slug(&room);
    let before = cp.applied();
    for who in [&bob, &As::anonymous(), &As::key("not-the-key")] {
        let text = cp
            .json(
                "PUT",
                &format!("/api/rooms/{s}/cover"),
                who,
                json!({"title": "Mine"}),
            )
            .await;
        assert!(text.error(403, "forbidden").contains("owner"));
        let image = upload(
            &cp.base,
            &s,
            who,
            "image/png",
            encoded(CoverKind::Png, 32, 32),
        )
        .await;
        assert_eq!(image.0, 403, "{image:?}");
        let removed = cp
            .send("DELETE", &format!("/api/rooms/{s}/cover/image"), who, None)
            .await;
        removed.error(403, "forbidden");
    }
    assert_eq!(cp.applied(), before, "a refused change writes nothing");
    let bad = cp
        .send(
            "PUT",
            &format!("/api/rooms/{s}/cover"),
            &ada,
            Some("{\"title\":".into()),
        )
        .await;
    assert!(bad
        .error(400, "bad_request")
        .contains("invalid request body"));
    let long = cp
        .json(
            "PUT",
            &format!("/api/rooms/{s}/cover"),
            &ada,
            json!({"title": "x".repeat(101)}),
        )
        .await;
    assert!(long.error(400, "bad_request").contains("longer than 100"));
}

#[tokio::test]
async fn a_wrong_type_an_oversized_file_or_a_renamed_non_image_is_refused_with_a_clear_message() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let room = cp.room(&As::anonymous(), "open").await;
    let owner = As::key(room["owner_key"].as_str().unwrap());
    let s = slug(&room);
    let before = cp.applied();
    let png = encoded(CoverKind::Png, 64, 64);
    let mut big = png.clone();
    big.resize(3_250_000, 0);
    let jpeg = encoded(CoverKind::Jpeg, 64, 64);
    let mut garbage = jpeg[..4].to_vec();
    garbage.extend(std::iter::repeat_n(0x42u8, 2_000));
    const NOT_AN_IMAGE_TYPE: &str = "The cover must be a PNG, JPEG or WebP image";
    const NOT_A_PNG: &str = "The file is not a valid PNG image";
    // (what, declared type, body, status, message)
    let cases: [(&str, &str, Vec<u8>, u16, &str); 7] = [
        (
            "a GIF",
            "image/gif",
            b"GIF89a....".to_vec(),
            400,
            NOT_AN_IMAGE_TYPE,
        ),
        ("text", "text/plain", png.clone(), 400, NOT_AN_IMAGE_TYPE),
        (
            "an oversized file",
            "image/png",
            big,
            413,
            "The cover image is 3.1 MB; the limit is 2 MB",
        ),
        (
            "a renamed text file",
            "image/png",
            b"meeting notes, renamed to cover.png".to_vec(),
            400,
            NOT_A_PNG,
        ),
        (
            "a truncated image",
            "image/png",
            png[..png.len() / 2].to_vec(),
            400,
            NOT_A_PNG,
        ),
        (
            "garbage after a valid signature",
            "image/jpeg",
            garbage,
            400,
            "The file is not a valid JPEG image",
        ),
        (
            "a sliver",
            "image/png",
            encoded(CoverKind::Png, 8, 400),
            400,
            "The cover image is 8×400 pixels; each side must be between 16 and 4096 pixels",
        ),
    ];
    for (what, content_type, body, status, message) in cases {
        assert_eq!(
            refused(upload(&cp.base, &s, &owner, content_type, body).await),
            (status, message.to_owned()),
            "{what}"
        );
    }
    assert_eq!(cp.applied(), before, "nothing refused was written");
    let view = cp
        .send("GET", &format!("/api/rooms/{s}"), &As::anonymous(), None)
        .await;
    assert!(view.ok(200).get("cover").is_none(), "still no cover");
    const { assert!(MAX_BYTES < 3_250_000) };
}

#[tokio::test]
async fn valid_png_jpeg_and_webp_covers_are_shown_and_served_with_their_type() {
    let cp = Cp::start(RoomCreation::Anyone).await;
    let (_, ada) = cp.user("ada@example.test", "Ada").await;
    let room = cp.room(&ada, "open").await;
    let s = slug(&room);
    let text = cp
        .json(
            "PUT",
            &format!("/api/rooms/{s}/cover"),
            &ada,
            json!({"title": "  Quarterly review ", "description": "Numbers\nthen questions"}),
        )
        .await;
    let cover = &text.ok(200)["cover"];
    assert_eq!(cover["title"], "Quarterly review");
    assert_eq!(cover["description"], "Numbers\nthen questions");
    assert!(cover.get("image_url").is_none());
    let mut last_url = String::new();
    for kind in CoverKind::ALL {
        let bytes = encoded(kind, 80, 45);
        let (status, view) = upload(&cp.base, &s, &ada, kind.content_type(), bytes.clone()).await;
        assert_eq!(status, 200, "{kind:?}: {view}");
        let url = view["cover"]["image_url"].as_str().unwrap().to_owned();
        assert_ne!(url, last_url, "each upload has its own URL");
        assert_eq!(view["cover"]["image_width"], 80);
        assert_eq!(view["cover"]["title"], "Quarterly review", "the text stays");
        let got = reqwest::get(format!("{}{url}", cp.base)).await.unwrap();
        assert_eq!(got.status(), 200);
        assert_eq!(got.headers()["content-type"], kind.content_type());
        assert_eq!(got.headers()["x-content-type-options"], "nosniff");
        assert_eq!(
            got.headers()["content-security-policy"],
            "default-src 'none'; sandbox",
            "opened directly, an upload runs nothing on this origin"
        );
        assert!(got.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
        last_url = url;
    }
    // Well past the API's 16 KiB body limit, under the cover's 2 MB.
    let noise = image::RgbImage::from_fn(600, 600, |x, y| {
        let n = (x.wrapping_mul(7_919) ^ y.wrapping_mul(104_729)).wrapping_mul(2_654_435_761);
        image::Rgb([n as u8, (n >> 8) as u8, (n >> 16) as u8])
    });
    let mut big = std::io::Cursor::new(Vec::new());
    noise.write_to(&mut big, image::ImageFormat::Png).unwrap();
    let big = big.into_inner();
    assert!(
        big.len() > 500_000 && big.len() < MAX_BYTES,
        "{}",
        big.len()
    );
    let (status, view) = upload(&cp.base, &s, &ada, "image/png", big).await;
    assert_eq!(status, 200, "a large valid image: {view}");
    last_url = view["cover"]["image_url"].as_str().unwrap().to_owned();
    let stale = reqwest::get(format!("{}/api/rooms/{s}/cover/image?v=old", cp.base))
        .await
        .unwrap();
    assert_eq!(
        stale.headers()["cache-control"],
        "no-cache",
        "an old URL revalidates"
    );
    // Anyone with the link sees the cover; the owner lists it.
    let seen = cp
        .send("GET", &format!("/api/rooms/{s}"), &As::anonymous(), None)
        .await;
    assert_eq!(seen.ok(200)["cover"]["image_url"], last_url.as_str());
    let mine = cp.send("GET", "/api/me/rooms", &ada, None).await;
    let rooms = mine.ok(200)["rooms"].as_array().unwrap().clone();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0]["slug"], s.as_str());
    assert_eq!(rooms[0]["cover"]["image_url"], last_url.as_str());
    cp.send("GET", "/api/me/rooms", &As::anonymous(), None)
        .await
        .error(401, "unauthorized");
    // Removing the image keeps the text; the old URL is gone.
    let removed = cp
        .send("DELETE", &format!("/api/rooms/{s}/cover/image"), &ada, None)
        .await;
    let cover = &removed.ok(200)["cover"];
    assert_eq!(cover["title"], "Quarterly review");
    assert!(cover.get("image_url").is_none());
    let gone = reqwest::get(format!("{}{last_url}", cp.base))
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn a_cover_survives_a_restart_of_the_control_plane() {
    let dir = tempfile::tempdir().unwrap();
    let config = || ControlPlaneConfig {
        http: crate::admission::HttpConfig {
            room_creation: RoomCreation::Anyone,
            ..Default::default()
        },
        ..ControlPlaneConfig::single_node(
            dir.path().to_owned(),
            "in-crate-test-secret-of-32-bytes!!".into(),
        )
    };
    let serve = |cp: std::sync::Arc<ControlPlane>| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = cp.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        (base, task)
    };
    let cp = ControlPlane::open(config()).await.unwrap();
    let (base, task) = serve(cp.clone()).await;
    let http = reqwest::Client::new();
    let room: Value = http
        .post(format!("{base}/api/rooms"))
        .json(&json!({"name": "Kept"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let s = slug(&room);
    let owner = As::key(room["owner_key"].as_str().unwrap());
    let bytes = encoded(CoverKind::Webp, 40, 40);
    let (status, view) = upload(&base, &s, &owner, "image/webp", bytes.clone()).await;
    assert_eq!(status, 200, "{view}");
    let url = view["cover"]["image_url"].as_str().unwrap().to_owned();
    task.abort();
    let _ = task.await;
    drop(http);
    cp.shutdown().await.unwrap();
    drop(cp);

    let cp = ControlPlane::open(config()).await.unwrap();
    let (base, task) = serve(cp.clone()).await;
    let seen: Value = reqwest::get(format!("{base}/api/rooms/{s}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        seen["cover"]["image_url"],
        url.as_str(),
        "the cover is still there"
    );
    let got = reqwest::get(format!("{base}{url}")).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
    task.abort();
    cp.shutdown().await.unwrap();
}
