//! Room covers in a real browser: the owner of a room (an anonymous
//! creator, by the owner key their browser keeps) picks files in the
//! pre-join page's "Cover image" input. A GIF, a 3.1 MB file and a text
//! file renamed `.png` are each refused with the message on the page (the
//! first two by the page's own check, the last by the server, which
//! decodes it); a real PNG with a title and a description is saved, and
//! the pre-join page then shows the image (loaded, `naturalWidth > 0`),
//! the title and the description, also to a visitor who is not the owner.
//!
//! Needs Debian's `chromium` and `chromium-driver`, and should run in the
//! loopback-only namespace `scripts/test.sh` creates:
//! `unshare -n bash -c 'ip link set lo up; cargo test --test it browser_covers::'`.

use crate::common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A valid `w`×`h` RGB PNG: a gradient, in stored (uncompressed) deflate
/// blocks, so the test needs no image library.
fn png(w: u32, h: u32) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // filter: none
        for x in 0..w {
            raw.extend_from_slice(&[(x * 4) as u8, (y * 6) as u8, 160]);
        }
    }
    // zlib: header, stored blocks of at most 65 535 bytes, Adler-32.
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A scratch directory for the files the browser picks, removed on drop.
struct Files(PathBuf);

impl Files {
    fn new() -> Files {
        let dir =
            std::env::temp_dir().join(format!("veche-covers-{}-{}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&dir).unwrap();
        Files(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The visible text of the page.
async fn page_text(b: &Chrome) -> Result<String, String> {
    let v = b.js("return document.body.innerText;", vec![]).await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

/// Picks `path` in the "Cover image" file input, as a user choosing a file.
async fn choose(b: &Chrome, path: &str) {
    let input = b.find_by_name("input", "Cover image").await;
    b.js("document.getElementById('cover-file').value = '';", vec![])
        .await
        .unwrap();
    b.type_into(&input, path)
        .await
        .unwrap_or_else(|e| panic!("choosing {path}: {e}"));
}

/// Waits for the editor's alert to say `message`.
async fn alert_says(b: &Chrome, message: &str) {
    wait_for(
        &format!("the page says {message:?}"),
        secs(10),
        async || {
            let v = b
                .js(
                    "const el = document.getElementById('cover-error'); \
                 return el.hidden ? '' : el.textContent;",
                    vec![],
                )
                .await?;
            match v.as_str() {
                Some(t) if t == message => Ok(()),
                other => Err(format!("the cover alert says {other:?}")),
            }
        },
    )
    .await;
}

/// Waits until the pre-join page shows the cover: the image loaded, with
/// its title as alt text, and the title and description visible.
async fn shows_cover(b: &Chrome, title: &str, description: &str) {
    wait_for("the pre-join page shows the cover", secs(15), async || {
        let v = b
            .js(
                "const img = document.getElementById('prejoin-cover-image'); \
                 return { visible: !document.getElementById('prejoin-cover').hidden && !img.hidden, \
                          complete: img.complete, width: img.naturalWidth, alt: img.alt, \
                          text: document.getElementById('prejoin-cover').innerText };",
                vec![],
            )
            .await?;
        let ok = v["visible"] == true
            && v["complete"] == true
            && v["width"].as_u64().unwrap_or(0) > 0
            && v["alt"] == title
            && v["text"].as_str().is_some_and(|t| t.contains(title) && t.contains(description));
        if ok {
            Ok(())
        } else {
            Err(format!("the cover as shown: {v}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_bad_covers_are_refused_with_a_message_and_a_valid_one_shows_before_joining() {
    let server = Server::start();
    let base = server.base().to_owned();
    let created = http_post_json(&server.url("/api/rooms"), &json!({"name": "Board"})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let room: Value = created.json();
    let slug = str_field(&room, "slug").to_owned();
    let key = str_field(&room, "owner_key").to_owned();
    let link = str_field(&room, "link").to_owned();
    let files = Files::new();
    let gif = files.write("animation.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;");
    let mut big_bytes = png(64, 36);
    big_bytes.resize(3_250_000, 0);
    let big = files.write("huge.png", &big_bytes);
    let renamed = files.write("notes.png", b"Agenda: numbers, then questions.\n");
    let cover = files.write("cover.png", &png(64, 36));
    assert!(Path::new(&cover).exists());

    let (owner, visitor) = tokio::join!(Chrome::start("Owner"), Chrome::start("Visitor"));
    dump_on_failure(&[&owner, &visitor], async {
        owner.keep_owner_key(&base, &slug, &key).await;
        owner.goto(&link).await;

        choose(&owner, &gif).await;
        owner.click_button("Save cover").await;
        alert_says(&owner, "The cover must be a PNG, JPEG or WebP image").await;

        choose(&owner, &big).await;
        owner.click_button("Save cover").await;
        alert_says(&owner, "The cover image is 3.1 MB; the limit is 2 MB").await;

        // Its type (from the name) passes the page's check: the server
        // decodes it and refuses.
        choose(&owner, &renamed).await;
        owner.click_button("Save cover").await;
        alert_says(&owner, "The file is not a valid PNG image").await;
        let seen = http_get(&format!("{base}/api/rooms/{slug}")).await.json();
        assert!(seen.get("cover").is_none(), "nothing was saved: {seen}");

        choose(&owner, &cover).await;
        let title = owner.find_by_name("input", "Cover title").await;
        owner.type_into(&title, "Quarterly review").await.unwrap();
        let description = owner.find_by_name("textarea", "Cover description").await;
        owner
            .type_into(&description, "Numbers first, then questions")
            .await
            .unwrap();
        owner.click_button("Save cover").await;
        shows_cover(&owner, "Quarterly review", "Numbers first, then questions").await;
        assert!(
            !page_text(&owner).await.unwrap().contains("not a valid"),
            "the old refusal is gone"
        );

        // Someone else opening the link sees it too, without the editor.
        visitor.goto(&link).await;
        shows_cover(
            &visitor,
            "Quarterly review",
            "Numbers first, then questions",
        )
        .await;
        let editor = visitor
            .js(
                "return document.getElementById('cover-editor').hidden;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(editor, true, "only the owner edits the cover");
    })
    .await;
    owner.close().await;
    visitor.close().await;
}
