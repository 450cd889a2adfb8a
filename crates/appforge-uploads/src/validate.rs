//! Upload validation: the format from the bytes, limits before decoding, then a decode and a
//! re-encode so that only pixels are stored.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageError, ImageReader, Limits};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// 5 MB: the default limit on an upload's size.
pub const DEFAULT_MAX_BYTES: u64 = 5 * 1024 * 1024;
/// 8,000 pixels: the default limit on either side of an image.
pub const DEFAULT_MAX_SIDE: u32 = 8_000;
/// 40 million pixels: the default limit on width x height (160 MB decoded as RGBA).
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;

/// The quality of re-encoded JPEG images.
const JPEG_QUALITY: u8 = 90;

/// The media type of an accepted or stored image.
///
/// Serialized as its MIME type (`"image/png"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MediaType {
    /// `image/png`.
    #[serde(rename = "image/png")]
    Png,
    /// `image/jpeg`.
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// `image/webp`.
    #[serde(rename = "image/webp")]
    Webp,
    /// `image/gif`.
    #[serde(rename = "image/gif")]
    Gif,
}

impl MediaType {
    /// The MIME type: `image/png`, `image/jpeg`, `image/webp` or `image/gif`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
            Self::Gif => "image/gif",
        }
    }

    /// The usual file extension, without the dot.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
            Self::Gif => "gif",
        }
    }

    /// The media type a MIME type names, if it is one of the four.
    #[must_use]
    pub fn from_mime(mime: &str) -> Option<Self> {
        match mime.trim().to_ascii_lowercase().as_str() {
            "image/png" => Some(Self::Png),
            "image/jpeg" | "image/jpg" => Some(Self::Jpeg),
            "image/webp" => Some(Self::Webp),
            "image/gif" => Some(Self::Gif),
            _ => None,
        }
    }

    /// The format of `bytes` from their signature (never from a name or a client's content
    /// type), if it is one of the four accepted.
    #[must_use]
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        match image::guess_format(bytes).ok()? {
            image::ImageFormat::Png => Some(Self::Png),
            image::ImageFormat::Jpeg => Some(Self::Jpeg),
            image::ImageFormat::WebP => Some(Self::Webp),
            image::ImageFormat::Gif => Some(Self::Gif),
            _ => None,
        }
    }

    fn image_format(self) -> image::ImageFormat {
        match self {
            Self::Png => image::ImageFormat::Png,
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Webp => image::ImageFormat::WebP,
            Self::Gif => image::ImageFormat::Gif,
        }
    }
}

impl std::fmt::Display for MediaType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The limits an upload is checked against, all before anything is decoded.
///
/// ```
/// use appforge_uploads::ImagePolicy;
///
/// let policy = ImagePolicy::default().max_bytes(2 * 1024 * 1024).max_side(4_096);
/// assert_eq!(policy.max_bytes_limit(), 2 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImagePolicy {
    max_bytes: u64,
    max_side: u32,
    max_pixels: u64,
}

impl Default for ImagePolicy {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_side: DEFAULT_MAX_SIDE,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

impl ImagePolicy {
    /// The largest upload in bytes ([`DEFAULT_MAX_BYTES`] by default).
    #[must_use]
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The longest side in pixels ([`DEFAULT_MAX_SIDE`] by default).
    #[must_use]
    pub fn max_side(mut self, pixels: u32) -> Self {
        self.max_side = pixels;
        self
    }

    /// The most pixels, width x height ([`DEFAULT_MAX_PIXELS`] by default).
    #[must_use]
    pub fn max_pixels(mut self, pixels: u64) -> Self {
        self.max_pixels = pixels;
        self
    }

    /// The byte limit.
    #[must_use]
    pub fn max_bytes_limit(&self) -> u64 {
        self.max_bytes
    }

    /// The side limit.
    #[must_use]
    pub fn max_side_limit(&self) -> u32 {
        self.max_side
    }

    /// The pixel limit.
    #[must_use]
    pub fn max_pixels_limit(&self) -> u64 {
        self.max_pixels
    }

    /// Checks `bytes` and re-encodes the image they hold.
    ///
    /// In order, each step refusing before the next one runs: the size against the byte
    /// limit; the format from the bytes' signature (PNG, JPEG, WebP or GIF, whatever the
    /// client claimed); the dimensions from the header against the side and pixel limits;
    /// then a decode under [`image::Limits`] (a decoder that would allocate past the pixel
    /// budget stops). The decoded pixels are encoded again, as JPEG for a JPEG and as PNG
    /// for the others (the first frame of an animation), so nothing but pixels is kept:
    /// metadata (EXIF, comments, colour profiles) and whatever was appended after the image
    /// data (an HTML or script polyglot) are dropped.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`], [`Error::UnsupportedFormat`], [`Error::DimensionsTooLarge`],
    /// [`Error::TooManyPixels`], [`Error::Corrupt`].
    pub fn validate(&self, bytes: &[u8]) -> Result<ValidatedImage> {
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > self.max_bytes {
            return Err(Error::TooLarge {
                size,
                max: self.max_bytes,
            });
        }
        let format = MediaType::sniff(bytes).ok_or(Error::UnsupportedFormat)?;
        let (width, height) = ImageReader::with_format(Cursor::new(bytes), format.image_format())
            .into_dimensions()
            .map_err(corrupt)?;
        self.check_dimensions(width, height)?;

        let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
        reader.limits(self.decode_limits());
        let decoded = reader.decode().map_err(|e| match e {
            ImageError::Limits(_) => Error::TooManyPixels {
                width,
                height,
                max_pixels: self.max_pixels,
            },
            other => corrupt(other),
        })?;
        let (media_type, bytes) = reencode(format, &decoded)?;
        let sha256 = hex(&Sha256::digest(&bytes));
        Ok(ValidatedImage {
            media_type,
            width: decoded.width(),
            height: decoded.height(),
            sha256,
            bytes: bytes.into(),
        })
    }

    fn check_dimensions(&self, width: u32, height: u32) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(Error::Corrupt(format!("the image is {width} x {height}")));
        }
        if width > self.max_side || height > self.max_side {
            return Err(Error::DimensionsTooLarge {
                width,
                height,
                max_side: self.max_side,
            });
        }
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return Err(Error::TooManyPixels {
                width,
                height,
                max_pixels: self.max_pixels,
            });
        }
        Ok(())
    }

    fn decode_limits(&self) -> Limits {
        let mut limits = Limits::default();
        limits.max_image_width = Some(self.max_side);
        limits.max_image_height = Some(self.max_side);
        // Four bytes a pixel (RGBA8) plus room for a decoder's working buffers; a 16-bit
        // image of the largest size allowed is refused rather than decoded.
        limits.max_alloc = Some(self.max_pixels.saturating_mul(4).saturating_add(64 << 20));
        limits
    }
}

/// An image that passed [`ImagePolicy::validate`]: re-encoded bytes and what is known of
/// them.
#[derive(Clone, PartialEq, Eq)]
pub struct ValidatedImage {
    /// The stored format: JPEG for a JPEG upload, PNG for the others.
    pub media_type: MediaType,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The SHA-256 of [`bytes`](Self::bytes), lowercase hex.
    pub sha256: String,
    /// The re-encoded image.
    pub bytes: bytes::Bytes,
}

impl std::fmt::Debug for ValidatedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatedImage")
            .field("media_type", &self.media_type)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("sha256", &self.sha256)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

fn reencode(format: MediaType, image: &DynamicImage) -> Result<(MediaType, Vec<u8>)> {
    let mut out = Vec::new();
    let media_type = if format == MediaType::Jpeg {
        let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
        rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY))
            .map_err(|e| Error::Corrupt(format!("cannot re-encode: {e}")))?;
        MediaType::Jpeg
    } else {
        let encoder =
            PngEncoder::new_with_quality(&mut out, CompressionType::Default, FilterType::Adaptive);
        image
            .write_with_encoder(encoder)
            .map_err(|e| Error::Corrupt(format!("cannot re-encode: {e}")))?;
        MediaType::Png
    };
    Ok((media_type, out))
}

fn corrupt(e: ImageError) -> Error {
    match e {
        ImageError::Unsupported(_) => Error::UnsupportedFormat,
        other => Error::Corrupt(other.to_string()),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::new_rgba8(width, height);
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn a_small_png_is_accepted_with_its_dimensions_and_digest() {
        let image = ImagePolicy::default().validate(&png(3, 2)).unwrap();
        assert_eq!((image.width, image.height), (3, 2));
        assert_eq!(image.media_type, MediaType::Png);
        assert_eq!(image.sha256, hex(&Sha256::digest(&image.bytes)));
        assert_eq!(image.sha256.len(), 64);
    }

    #[test]
    fn limits_are_checked_before_decoding() {
        let policy = ImagePolicy::default().max_side(2);
        assert!(matches!(
            policy.validate(&png(3, 2)),
            Err(Error::DimensionsTooLarge {
                width: 3,
                height: 2,
                max_side: 2
            })
        ));
        let policy = ImagePolicy::default().max_pixels(5);
        assert!(matches!(
            policy.validate(&png(3, 2)),
            Err(Error::TooManyPixels { max_pixels: 5, .. })
        ));
        let policy = ImagePolicy::default().max_bytes(10);
        assert!(matches!(
            policy.validate(&png(3, 2)),
            Err(Error::TooLarge { max: 10, .. })
        ));
    }

    #[test]
    fn media_types_read_from_mime_and_bytes() {
        assert_eq!(MediaType::from_mime("IMAGE/JPG"), Some(MediaType::Jpeg));
        assert_eq!(MediaType::from_mime("image/svg+xml"), None);
        assert_eq!(MediaType::sniff(&png(1, 1)), Some(MediaType::Png));
        assert_eq!(
            MediaType::sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            None
        );
    }
}
