//! Guest passes in real browsers: a room for signed-in members or guests
//! with a pass, made by an anonymous creator (who owns it by the owner key
//! their browser keeps). A guest opens a pass link and joins; the owner's
//! participant list shows them as "(guest)". Links of a pass that expired
//! and of one not valid yet each show their window and offer no way in. The
//! owner creates a pass in the "Guest passes" dialog, sees it active, and
//! revokes it.
//!
//! Needs Debian's `chromium` and `chromium-driver`, and should run in the
//! loopback-only namespace `scripts/test.sh` creates.

use crate::common::*;
use serde_json::{json, Value};
use veche_protocol::pass::OWNER_KEY_HEADER;

/// Creates a pass through the API as the owner; returns its link.
async fn pass(base: &str, slug: &str, key: &str, label: &str, from: u64, until: u64) -> String {
    let reply = http_post_json_with_headers(
        &format!("{base}/api/rooms/{slug}/passes"),
        &json!({"label": label, "valid_from_ms": from, "valid_until_ms": until}),
        &[(OWNER_KEY_HEADER, key)],
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    str_field(&reply.json(), "link").to_owned()
}

/// The visible text of the page.
async fn page_text(b: &Chrome) -> Result<String, String> {
    let v = b.js("return document.body.innerText;", vec![]).await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_a_guest_joins_on_a_pass_and_shows_as_guest_and_dead_passes_admit_no_one() {
    let server = Server::start();
    let base = server.base().to_owned();
    let created = http_post_json(
        &server.url("/api/rooms"),
        &json!({"name": "Board", "access": "signed_in_or_pass"}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let room: Value = created.json();
    let slug = str_field(&room, "slug").to_owned();
    let key = str_field(&room, "owner_key").to_owned();
    let link = str_field(&room, "link").to_owned();
    let now = now_ms();
    let hour = 3_600_000;
    let guest_link = pass(&base, &slug, &key, "Visitor", now - hour, now + hour).await;
    let later_link = pass(
        &base,
        &slug,
        &key,
        "Tomorrow",
        now + 24 * hour,
        now + 25 * hour,
    )
    .await;
    // Valid for two seconds from now: expired by the time it is opened.
    let short_until = now_ms() + 2_000;
    let short_link = pass(&base, &slug, &key, "Brief", now - hour, short_until).await;

    let (owner, guest) = tokio::join!(Chrome::start("Owner"), Chrome::start("Guest"));
    dump_on_failure(&[&owner, &guest], async {
        // The owner's browser keeps the key it was given, as the home page
        // does after creating the room.
        owner.keep_owner_key(&base, &slug, &key).await;
        owner
            .goto(&format!("{link}?name=Owner&skipPrejoin=1"))
            .await;
        guest
            .goto(&format!("{guest_link}&name=Visitor&skipPrejoin=1"))
            .await;
        wait_for(
            "the owner's participant list shows the visitor as a guest",
            secs(15),
            async || {
                let entries = owner.participant_entries().await?;
                if entries.iter().any(|e| e.contains("Visitor (guest)")) {
                    Ok(())
                } else {
                    Err(format!("participants at the owner: {entries:?}"))
                }
            },
        )
        .await;
        let at_guest = guest.participant_entries().await.unwrap();
        assert!(
            at_guest
                .iter()
                .any(|e| e.contains("Owner") && !e.contains("guest")),
            "the owner-key holder is no guest: {at_guest:?}"
        );

        // The owner manages passes from the meeting: create one, see it
        // active with its link, revoke it.
        owner.click_button("Guest passes").await;
        let label = owner.find_by_name("input", "Who it is for").await;
        owner.type_into(&label, "Second visitor").await.unwrap();
        owner.click_button("Create pass").await;
        wait_for("the new pass's link is shown once", secs(10), async || {
            let v = owner
                .js(
                    "return document.getElementById('pass-created-link').value;",
                    vec![],
                )
                .await?;
            match v.as_str() {
                Some(l) if l.contains(&format!("/r/{slug}?pass=")) => Ok(()),
                _ => Err(format!("link box holds {v}")),
            }
        })
        .await;
        let pass_entry = async |status: &str| {
            let v = owner
                .js(
                    "return Array.from(document.querySelectorAll('#passes-list li'))\
                     .map((li) => li.innerText.replace(/\\s+/g, ' '));",
                    vec![],
                )
                .await?;
            let entries: Vec<String> = serde_json::from_value(v).map_err(|e| e.to_string())?;
            if entries
                .iter()
                .any(|e| e.contains("Second visitor") && e.contains(status))
            {
                Ok(())
            } else {
                Err(format!("passes listed: {entries:?}"))
            }
        };
        wait_for(
            "the list shows the new pass as active",
            secs(10),
            async || pass_entry("Active").await,
        )
        .await;
        owner.click_button("Revoke pass Second visitor").await;
        wait_for("the list shows the pass as revoked", secs(10), async || {
            pass_entry("Revoked").await
        })
        .await;

        // A pass not valid yet: its window, and no way in.
        guest.goto(&later_link).await;
        let text = wait_for("the page states the pass's window", secs(10), async || {
            let t = page_text(&guest).await?;
            if t.contains("This pass is valid from") {
                Ok(t)
            } else {
                Err(format!("page text: {t:?}"))
            }
        })
        .await;
        assert!(!text.contains("Join meeting"), "no join offered: {text}");

        // A pass that expired (its two seconds are up once the server
        // says so).
        let token = short_link.split_once("?pass=").unwrap().1.to_owned();
        wait_for("the brief pass has expired", secs(10), async || {
            let v = http_get(&format!("{base}/api/rooms/{slug}?pass={token}"))
                .await
                .json();
            match v["pass_refusal"].as_str() {
                Some(r) if r.contains("expired") => Ok(()),
                _ => Err(format!(
                    "the room lookup says {v}; it ends at {short_until}"
                )),
            }
        })
        .await;
        guest.goto(&short_link).await;
        let text = wait_for("the page says the pass expired", secs(10), async || {
            let t = page_text(&guest).await?;
            if t.contains("This pass expired on") {
                Ok(t)
            } else {
                Err(format!("page text: {t:?}"))
            }
        })
        .await;
        assert!(!text.contains("Join meeting"), "no join offered: {text}");
    })
    .await;
    owner.close().await;
    guest.close().await;
}
