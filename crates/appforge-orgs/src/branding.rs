//! An org's branding: display name, primary colour and logo.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Error, Result};

/// The largest logo accepted, in bytes (256 KiB).
pub const MAX_LOGO_BYTES: usize = 256 * 1024;

/// The longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 80;

/// The least contrast ratio white text must have on the primary colour (WCAG 2 AA, normal
/// text).
pub const MIN_CONTRAST: f64 = 4.5;

/// The media types a logo may have: raster images only (no SVG, which can carry script).
pub const LOGO_MEDIA_TYPES: [&str; 3] = ["image/png", "image/jpeg", "image/webp"];

/// An sRGB colour written `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Color {
    /// Red, 0 to 255.
    pub r: u8,
    /// Green, 0 to 255.
    pub g: u8,
    /// Blue, 0 to 255.
    pub b: u8,
}

impl Color {
    /// Parses `#rrggbb` (hex digits in either case).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || Error::InvalidArgument(format!("colour {text:?} is not #rrggbb"));
        let hex = text.strip_prefix('#').ok_or_else(invalid)?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| invalid());
        Ok(Self {
            r: channel(0)?,
            g: channel(2)?,
            b: channel(4)?,
        })
    }

    /// The WCAG 2 relative luminance, from 0 (black) to 1 (white).
    #[must_use]
    pub fn relative_luminance(self) -> f64 {
        fn linear(channel: u8) -> f64 {
            let c = f64::from(channel) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        }
        0.2126 * linear(self.r) + 0.7152 * linear(self.g) + 0.0722 * linear(self.b)
    }

    /// The WCAG 2 contrast ratio of white text on this colour, from 1 to 21.
    #[must_use]
    pub fn contrast_with_white(self) -> f64 {
        1.05 / (self.relative_luminance() + 0.05)
    }

    /// Refuses a colour white text cannot be read on ([`MIN_CONTRAST`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the ratio.
    pub fn check_contrast(self) -> Result<Self> {
        let ratio = self.contrast_with_white();
        if ratio < MIN_CONTRAST {
            return Err(Error::InvalidArgument(format!(
                "primary colour {self} has a contrast ratio of {ratio:.2}:1 with white text, \
                 below the WCAG AA minimum of {MIN_CONTRAST}:1"
            )));
        }
        Ok(self)
    }
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }
}

/// What is known of a stored logo, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LogoInfo {
    /// `image/png`, `image/jpeg` or `image/webp`.
    pub media_type: String,
    /// The SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    /// The size in bytes.
    pub size: u32,
}

/// A stored logo.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Logo {
    /// `image/png`, `image/jpeg` or `image/webp`.
    pub media_type: String,
    /// The image.
    pub bytes: Vec<u8>,
    /// The SHA-256 of `bytes`, lowercase hex.
    pub sha256: String,
}

impl Logo {
    /// A logo of `media_type` (one of [`LOGO_MEDIA_TYPES`]) at most [`MAX_LOGO_BYTES`] long.
    /// The bytes should already be re-encoded from decoded pixels: the store keeps them as
    /// given.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for another media type, an empty or a too large image.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Result<Self> {
        if !LOGO_MEDIA_TYPES.contains(&media_type) {
            return Err(Error::InvalidArgument(format!(
                "logo type {media_type:?} is not one of PNG, JPEG or WebP"
            )));
        }
        if bytes.is_empty() || bytes.len() > MAX_LOGO_BYTES {
            return Err(Error::InvalidArgument(format!(
                "a logo is 1 to {MAX_LOGO_BYTES} bytes, not {}",
                bytes.len()
            )));
        }
        let sha256 = hex::encode(crate::token::sha256(&[&bytes]));
        Ok(Self {
            media_type: media_type.to_owned(),
            bytes,
            sha256,
        })
    }

    /// Its description without the bytes.
    #[must_use]
    pub fn info(&self) -> LogoInfo {
        LogoInfo {
            media_type: self.media_type.clone(),
            sha256: self.sha256.clone(),
            size: u32::try_from(self.bytes.len()).unwrap_or(u32::MAX),
        }
    }
}

impl std::fmt::Debug for Logo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logo")
            .field("media_type", &self.media_type)
            .field("len", &self.bytes.len())
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// An org's branding. An org that never set it has the default: nothing set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Branding {
    /// The org.
    pub org_id: Uuid,
    /// The name shown instead of the org's own, if set.
    pub display_name: Option<String>,
    /// The accent colour, `#rrggbb` in lowercase, if set.
    pub primary_color: Option<String>,
    /// The logo, if one is stored.
    pub logo: Option<LogoInfo>,
    /// When it last changed (`None`: never set).
    pub updated_at: Option<DateTime<Utc>>,
}

impl Branding {
    /// Nothing set.
    #[must_use]
    pub fn empty(org_id: Uuid) -> Self {
        Self {
            org_id,
            display_name: None,
            primary_color: None,
            logo: None,
            updated_at: None,
        }
    }
}

/// Checks a display name: trimmed, not empty, at most [`MAX_DISPLAY_NAME_CHARS`], no control
/// characters. Empty means unset.
pub(crate) fn check_display_name(name: Option<&str>) -> Result<Option<String>> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "a display name is at most {MAX_DISPLAY_NAME_CHARS} characters, without control \
             characters"
        )));
    }
    Ok(Some(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratio(hex: &str) -> f64 {
        (Color::parse(hex).unwrap().contrast_with_white() * 100.0).round() / 100.0
    }

    #[test]
    fn contrast_matches_known_values() {
        assert!((ratio("#767676") - 4.54).abs() < f64::EPSILON);
        assert!((ratio("#777777") - 4.48).abs() < f64::EPSILON);
        assert!((ratio("#000000") - 21.0).abs() < f64::EPSILON);
        assert!((ratio("#FFFFFF") - 1.0).abs() < f64::EPSILON);
        assert!(Color::parse("#767676").unwrap().check_contrast().is_ok());
        let refused = Color::parse("#777777")
            .unwrap()
            .check_contrast()
            .unwrap_err();
        assert!(refused.to_string().contains("4.48:1"), "{refused}");
    }

    #[test]
    fn colours_parse_only_as_six_hex_digits() {
        assert_eq!(Color::parse("#1A2b3C").unwrap().to_string(), "#1a2b3c");
        for bad in ["1a2b3c", "#123", "#12345g", "#1234567", "", "#", "red"] {
            assert!(Color::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn logos_are_raster_and_small() {
        assert!(Logo::new("image/svg+xml", vec![1]).is_err());
        assert!(Logo::new("image/png", vec![]).is_err());
        assert!(Logo::new("image/png", vec![0; MAX_LOGO_BYTES + 1]).is_err());
        let logo = Logo::new("image/webp", vec![0; 10]).unwrap();
        assert_eq!(logo.info().size, 10);
        assert_eq!(logo.sha256.len(), 64);
        assert!(!format!("{logo:?}").contains("[0"));
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(
            check_display_name(Some("  Acme ")).unwrap().as_deref(),
            Some("Acme")
        );
        assert_eq!(check_display_name(Some("  ")).unwrap(), None);
        assert!(check_display_name(Some(&"x".repeat(81))).is_err());
        assert!(check_display_name(Some("a\nb")).is_err());
    }
}
