//! Hostile and oversized uploads through the whole service: each is refused with its named
//! error and leaves nothing behind (no record, no usage, no object), or, for a polyglot, is
//! accepted with only its pixels kept.

use std::io::Cursor;
use std::time::Duration;

use appforge_core::ManualClock;
use appforge_uploads::{AnyUploadStore, Error, ImagePolicy, MediaType, Storage, Uploads};
use futures::TryStreamExt as _;
use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const ALLOWANCE: u64 = 50 * 1024 * 1024;

fn service() -> (Uploads, ManualClock) {
    let clock = ManualClock::at(appforge_testing::fixed_now());
    let uploads =
        Uploads::new(Storage::in_memory(), AnyUploadStore::default()).with_clock(clock.shared());
    (uploads, clock)
}

fn encoded(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
    let image = RgbaImage::from_fn(width, height, |x, y| {
        Rgba([
            u8::try_from(x % 256).unwrap(),
            u8::try_from(y % 256).unwrap(),
            90,
            255,
        ])
    });
    let image = if format == ImageFormat::Jpeg {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(image).to_rgb8())
    } else {
        DynamicImage::ImageRgba8(image)
    };
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn objects(uploads: &Uploads) -> usize {
    let list: Vec<_> = uploads
        .storage()
        .object_store()
        .list(None)
        .try_collect()
        .await
        .unwrap();
    list.len()
}

/// Asserts that `bytes` are refused with the error `check` accepts and nothing is stored.
async fn refused(bytes: &[u8], check: impl Fn(&Error) -> bool) {
    let (uploads, _) = service();
    let owner = Uuid::new_v4();
    let error = uploads.upload(owner, bytes, ALLOWANCE).await.unwrap_err();
    assert!(check(&error), "unexpected error: {error:?}");
    assert!(error.is_client_error(), "{error:?} is the client's fault");
    assert_eq!(uploads.usage(owner).await.unwrap(), 0);
    assert!(uploads.list(owner, 10).await.unwrap().is_empty());
    assert_eq!(objects(&uploads).await, 0, "nothing in storage");
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A valid-looking PNG of a few dozen bytes whose header declares `width` x `height` RGB
/// pixels: decoding it would allocate width x height x 3 bytes.
fn bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    // A zlib stream of a few zero bytes (stored block): the start of the first row.
    chunk(
        &mut png,
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x04, 0x00, 0xfb, 0xff, 0, 0, 0, 0, 0, 0x04, 0x00, 0x01,
        ],
    );
    chunk(&mut png, b"IEND", &[]);
    png
}

#[tokio::test]
async fn a_png_with_html_appended_keeps_only_its_pixels() {
    let (uploads, _) = service();
    let owner = Uuid::new_v4();
    let mut polyglot = encoded(ImageFormat::Png, 16, 8);
    polyglot.extend_from_slice(
        b"<html><body><script>fetch('/steal?c='+document.cookie)</script></body></html>",
    );

    let upload = uploads.upload(owner, &polyglot, ALLOWANCE).await.unwrap();
    assert_eq!((upload.width, upload.height), (16, 8));
    assert_eq!(upload.media_type, MediaType::Png);
    let (_, stored) = uploads.read(owner, upload.id).await.unwrap();
    assert!(
        !contains(&stored, b"<script>"),
        "the appended page is dropped"
    );
    assert!(!contains(&stored, b"<html>"));
    assert_eq!(upload.size_bytes, u64::try_from(stored.len()).unwrap());
    assert_eq!(upload.sha256, format!("{:x}", Sha256::digest(&stored)));
    // Still the same pixels.
    let decoded = image::load_from_memory(&stored).unwrap().to_rgba8();
    assert_eq!(decoded.get_pixel(3, 5), &Rgba([3, 5, 90, 255]));
}

#[tokio::test]
async fn exif_is_stripped_from_a_jpeg() {
    let (uploads, _) = service();
    let owner = Uuid::new_v4();
    let jpeg = encoded(ImageFormat::Jpeg, 32, 32);
    // An APP1 segment right after SOI: EXIF with a location in it.
    let mut payload = b"Exif\0\0MM\0*\0\0\0\x08GPS 51.5007N 0.1246W".to_vec();
    payload.resize(64, 0);
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend_from_slice(&[0xFF, 0xE1]);
    with_exif.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    with_exif.extend_from_slice(&payload);
    with_exif.extend_from_slice(&jpeg[2..]);
    assert!(contains(&with_exif, b"GPS 51.5007N"));

    let upload = uploads.upload(owner, &with_exif, ALLOWANCE).await.unwrap();
    assert_eq!(upload.media_type, MediaType::Jpeg);
    let (_, stored) = uploads.read(owner, upload.id).await.unwrap();
    assert!(!contains(&stored, b"Exif"));
    assert!(!contains(&stored, b"GPS 51.5007N"));
}

#[tokio::test]
async fn gif_and_webp_are_accepted_and_stored_as_png() {
    let (uploads, _) = service();
    let owner = Uuid::new_v4();
    for format in [ImageFormat::Gif, ImageFormat::WebP] {
        let upload = uploads
            .upload(owner, &encoded(format, 9, 7), ALLOWANCE)
            .await
            .unwrap();
        assert_eq!((upload.width, upload.height), (9, 7), "{format:?}");
        assert_eq!(upload.media_type, MediaType::Png);
        let (_, stored) = uploads.read(owner, upload.id).await.unwrap();
        assert_eq!(MediaType::sniff(&stored), Some(MediaType::Png));
    }
}

#[tokio::test]
async fn an_svg_is_refused() {
    let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(document.domain)</script></svg>"#;
    refused(svg, |e| matches!(e, Error::UnsupportedFormat)).await;
}

#[tokio::test]
async fn a_pdf_named_png_is_refused() {
    // Names and content types never reach validation: the bytes decide.
    let pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    refused(pdf, |e| matches!(e, Error::UnsupportedFormat)).await;
}

#[tokio::test]
async fn html_and_other_image_formats_are_refused() {
    refused(
        b"<!doctype html><html><script>alert(1)</script></html>",
        |e| matches!(e, Error::UnsupportedFormat),
    )
    .await;
    // A BMP header: a real image format, not one of the four.
    refused(
        b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x01\0\0\0\x01\0\0\0\x01\0\x18\0",
        |e| matches!(e, Error::UnsupportedFormat),
    )
    .await;
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_from_its_header() {
    let png = bomb(100_000, 100_000);
    assert!(png.len() < 100, "a {} byte file", png.len());
    refused(&png, |e| {
        matches!(
            e,
            Error::DimensionsTooLarge {
                width: 100_000,
                height: 100_000,
                max_side: 8_000
            }
        )
    })
    .await;
    // Within the side limit, over the pixel budget: refused before decoding as well.
    refused(&bomb(7_999, 7_999), |e| {
        matches!(e, Error::TooManyPixels { .. })
    })
    .await;
}

#[tokio::test]
async fn a_six_megabyte_file_is_refused_before_anything_else() {
    let mut big = encoded(ImageFormat::Png, 8, 8);
    big.resize(6 * 1024 * 1024, 0);
    refused(&big, |e| {
        matches!(e, Error::TooLarge { size, max } if *size == 6 * 1024 * 1024 && *max == 5 * 1024 * 1024)
    })
    .await;
}

#[tokio::test]
async fn a_truncated_image_is_corrupt() {
    let png = encoded(ImageFormat::Png, 64, 64);
    refused(&png[..png.len() / 2], |e| matches!(e, Error::Corrupt(_))).await;
}

#[tokio::test]
async fn the_allowance_refuses_and_stores_nothing() {
    let (uploads, _) = service();
    let owner = Uuid::new_v4();
    let png = encoded(ImageFormat::Png, 32, 32);
    let first = uploads.upload(owner, &png, 1_000_000).await.unwrap();
    let error = uploads
        .upload(owner, &png, first.size_bytes + 10)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::QuotaExceeded { .. }), "{error:?}");
    assert_eq!(error.status(), 403);
    assert_eq!(uploads.usage(owner).await.unwrap(), first.size_bytes);
    assert_eq!(objects(&uploads).await, 1);
}

#[tokio::test]
async fn another_owner_and_a_deleted_upload_are_not_found_and_purge_removes_the_bytes() {
    let (uploads, clock) = service();
    let (owner, stranger) = (Uuid::new_v4(), Uuid::new_v4());
    let upload = uploads
        .upload(owner, &encoded(ImageFormat::Png, 4, 4), ALLOWANCE)
        .await
        .unwrap();
    assert!(matches!(
        uploads.read(stranger, upload.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        uploads.delete(stranger, upload.id).await,
        Err(Error::NotFound(_))
    ));

    uploads.delete(owner, upload.id).await.unwrap();
    assert!(matches!(
        uploads.read(owner, upload.id).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(objects(&uploads).await, 1, "the bytes wait for the purge");

    clock.advance(Duration::from_secs(60));
    assert_eq!(
        uploads
            .purge_deleted(appforge_core::Clock::now(&clock))
            .await
            .unwrap(),
        1
    );
    assert_eq!(objects(&uploads).await, 0);
    assert_eq!(
        uploads
            .purge_deleted(appforge_core::Clock::now(&clock))
            .await
            .unwrap(),
        0
    );
}

#[test]
fn a_smaller_policy_applies() {
    let policy = ImagePolicy::default().max_bytes(100);
    assert!(matches!(
        policy.validate(&encoded(ImageFormat::Png, 64, 64)),
        Err(Error::TooLarge { max: 100, .. })
    ));
}
