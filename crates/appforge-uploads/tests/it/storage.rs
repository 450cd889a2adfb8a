//! Storage conformance: one body run on the local file system and on `object_store`'s
//! in-memory store, and S3 against a wiremock stand-in.

use appforge_uploads::Storage;
use bytes::Bytes;

async fn conformance(storage: Storage) {
    let key = "0b4f0b0e-owner/1f2e-upload.png";
    assert_eq!(storage.get(key).await.unwrap(), None);
    storage
        .put(key, Bytes::from_static(b"first"))
        .await
        .unwrap();
    assert_eq!(
        storage.get(key).await.unwrap().as_deref(),
        Some(&b"first"[..])
    );
    storage
        .put(key, Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_eq!(
        storage.get(key).await.unwrap().as_deref(),
        Some(&b"second"[..])
    );

    let other = "another-owner/1f2e-upload.png";
    storage
        .put(other, Bytes::from_static(b"theirs"))
        .await
        .unwrap();
    storage.delete(key).await.unwrap();
    assert_eq!(storage.get(key).await.unwrap(), None);
    assert_eq!(
        storage.get(other).await.unwrap().as_deref(),
        Some(&b"theirs"[..])
    );
    // Deleting what is not there is not an error (a purge retried).
    storage.delete(key).await.unwrap();
}

#[tokio::test]
async fn local_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("uploads");
    let url = url::Url::from_directory_path(&root).unwrap();
    let storage = Storage::from_url(url.as_str()).unwrap();
    assert!(root.is_dir(), "the directory is created");
    conformance(storage.clone()).await;
    // The bytes are files under the directory, keyed by owner.
    assert_eq!(
        std::fs::read(root.join("another-owner/1f2e-upload.png")).unwrap(),
        b"theirs"
    );
}

#[tokio::test]
async fn in_memory() {
    conformance(Storage::from_url("memory://").unwrap()).await;
    conformance(Storage::in_memory()).await;
}

#[tokio::test]
async fn relative_file_urls_and_unknown_schemes_are_refused() {
    assert!(Storage::from_url("ftp://example.com/uploads").is_err());
    assert!(Storage::from_url("uploads/here").is_err());
}

#[cfg(feature = "s3")]
mod s3 {
    use std::sync::Arc;

    use appforge_uploads::Storage;
    use bytes::Bytes;
    use object_store::aws::AmazonS3Builder;
    use wiremock::matchers::{header_regex, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SECRET: &str = "wJalrXUtnFEMI-test-secret-key";

    fn storage(server: &MockServer) -> Storage {
        let s3 = AmazonS3Builder::new()
            .with_bucket_name("appforge-uploads")
            .with_region("eu-west-1")
            .with_endpoint(server.uri())
            .with_allow_http(true)
            .with_access_key_id("AKIDEXAMPLE")
            .with_secret_access_key(SECRET)
            .build()
            .unwrap();
        Storage::new(Arc::new(s3), "tenant-a", "s3://appforge-uploads/tenant-a")
    }

    fn signed() -> impl wiremock::Match {
        header_regex(
            "authorization",
            "^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/[0-9]{8}/eu-west-1/s3/aws4_request, \
             SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$",
        )
    }

    #[tokio::test]
    async fn a_signed_put_and_get_reach_the_bucket_path() {
        let server = MockServer::start().await;
        let object = "/appforge-uploads/tenant-a/owner-1/upload-1.png";
        Mock::given(method("PUT"))
            .and(path(object))
            .and(signed())
            .and(header_regex("x-amz-content-sha256", "^[0-9a-f]{64}$"))
            .respond_with(ResponseTemplate::new(200).insert_header("ETag", "\"e1\""))
            .expect(1)
            .named("signed PUT")
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(object))
            .and(signed())
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("ETag", "\"e1\"")
                    .insert_header("Last-Modified", "Thu, 03 Dec 2026 07:00:00 GMT")
                    .set_body_bytes(b"pixels".to_vec()),
            )
            .expect(1)
            .named("signed GET")
            .mount(&server)
            .await;

        let storage = storage(&server);
        storage
            .put("owner-1/upload-1.png", Bytes::from_static(b"pixels"))
            .await
            .unwrap();
        let read = storage.get("owner-1/upload-1.png").await.unwrap();
        assert_eq!(read.as_deref(), Some(&b"pixels"[..]));

        let requests = server.received_requests().await.unwrap();
        let put = requests
            .iter()
            .find(|r| r.method.as_str() == "PUT")
            .unwrap();
        assert_eq!(put.body, b"pixels");
    }

    #[tokio::test]
    async fn a_missing_object_is_none() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(signed())
            .respond_with(
                ResponseTemplate::new(404).set_body_string(
                    "<Error><Code>NoSuchKey</Code><Message>missing</Message></Error>",
                ),
            )
            .mount(&server)
            .await;
        assert_eq!(
            storage(&server).get("owner-1/gone.png").await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn debug_shows_no_credentials() {
        let server = MockServer::start().await;
        let shown = format!("{:?}", storage(&server));
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("s3://appforge-uploads/tenant-a"), "{shown}");
    }
}
