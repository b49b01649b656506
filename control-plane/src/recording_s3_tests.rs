//! Recorded files in a REAL S3-compatible server on loopback: moto's
//! server (PyPI `moto[server]`, which scripts/test.sh installs), started
//! here, with a bucket made by a plain `PUT /bucket` (object_store cannot
//! create buckets). Segments go in through the same store the media node
//! gets; ranges come back through [`crate::recording_files`].

use crate::recording_files::tests::{put_segments, read_range};
use crate::recording_files::{delete_objects, map_range, stream_file};
use crate::recording_store::{s3, S3Settings};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use veche_protocol::recording::{export_key, recording_prefix, FileId, RecordingId};

/// A moto server on a free loopback port, killed when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server runs (pip install 'moto[server]'; scripts/test.sh installs it)");
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if reqwest::get(&moto.url).await.is_ok() {
            return moto;
        }
        assert!(
            Instant::now() < deadline,
            "moto_server did not answer on {} within 30 s",
            moto.url
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn bucket(moto: &Moto, name: &str) -> Arc<dyn ObjectStore> {
    let made = reqwest::Client::new()
        .put(format!("{}/{name}", moto.url))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "bucket not made: {made:?}");
    s3(&S3Settings {
        endpoint: moto.url.clone(),
        bucket: name.into(),
        region: "us-east-1".into(),
        access_key_id: "test-key".into(),
        secret_access_key: "test-secret".into(),
        allow_http: true,
    })
    .unwrap()
}

#[tokio::test]
async fn recording_segments_in_a_real_s3_server_read_back_by_range_and_delete() {
    let moto = start_moto().await;
    let store = bucket(&moto, "veche").await;
    let rec = RecordingId::from_random([4; 8]);
    let kept = RecordingId::from_random([5; 8]);
    let file = FileId::from_random([6; 8]);
    let (segs, whole) = put_segments(store.as_ref(), &rec, &file, &[5000, 17, 3000]).await;
    put_segments(store.as_ref(), &kept, &file, &[10]).await;
    // The objects are in the bucket, under the recording's prefix.
    let listed: Vec<String> = store
        .list(Some(&ObjectPath::from(recording_prefix(&rec))))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for range in [0..8017, 4990..5020, 5017..5018, 8000..8017] {
        let got = read_range(store.clone(), &rec, &file, &segs, range.clone()).await;
        assert_eq!(
            got,
            whole[range.start as usize..range.end as usize],
            "{range:?}"
        );
    }
    // An export object goes with the rest.
    object_store::ObjectStoreExt::put(
        store.as_ref(),
        &ObjectPath::from(export_key(&rec)),
        b"export".to_vec().into(),
    )
    .await
    .unwrap();
    delete_objects(store.as_ref(), &rec).await.unwrap();
    let left: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(&recording_prefix(&kept)), "{left:?}");
    // A deleted recording's file no longer streams.
    let gone: Result<Vec<_>, _> = stream_file(store, rec, file, map_range(&segs, 0..10))
        .try_collect()
        .await;
    assert!(gone.is_err());
}

#[tokio::test]
async fn recording_store_refuses_plain_http_unless_allowed() {
    let e = s3(&S3Settings {
        endpoint: "http://127.0.0.1:9".into(),
        bucket: "b".into(),
        region: "us-east-1".into(),
        access_key_id: "k".into(),
        secret_access_key: "very-secret-value".into(),
        allow_http: false,
    })
    .err()
    .unwrap();
    assert!(e.contains("allow_http"), "{e}");
    assert!(!e.contains("very-secret-value"), "{e}");
}
