//! The rules for a job's unique name (DESIGN §2): what people type to address a job must be
//! printable on one line and must never be mistaken for a job id.

use uuid::Uuid;

/// The longest unique name, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 256;

/// Why a unique name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is longer than [`MAX_NAME_BYTES`].
    #[error(
        "the unique name is {len} bytes long, over the limit of {max}; use a shorter name",
        max = MAX_NAME_BYTES
    )]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name holds a control character (a newline, a tab, an ESC…).
    #[error(
        "the unique name holds the control character U+{code:04X} at byte {at}; use printable characters only (no newlines, tabs or escapes)"
    )]
    ControlCharacter {
        /// The character's code point.
        code: u32,
        /// Its byte offset in the name.
        at: usize,
    },
    /// The name starts or ends with white space, which no listing shows and no one types back.
    #[error(
        "the unique name {name:?} starts or ends with white space, which `list` does not show and a shell drops; remove it"
    )]
    Padded {
        /// The name.
        name: String,
    },
    /// The name has the shape of a job id, so it could shadow one.
    #[error(
        "the unique name `{name}` looks like a job id ({shape}), so it could be mistaken for one; add a letter outside a-f, such as a word prefix (`job-{name}`)"
    )]
    IdShaped {
        /// The name.
        name: String,
        /// Which shape it has.
        shape: &'static str,
    },
}

/// Checks a unique name: at most [`MAX_NAME_BYTES`] bytes, no control character (Unicode
/// category Cc: C0, DEL, C1), no white space at either end, and not shaped like a job id. Id-shaped means: any text form of a
/// UUID (`0193…-…`, 32 hex digits, braced, `urn:uuid:`), or 8 to 32 hex digits — the length of
/// an id prefix the command line accepts or may accept for a job (the short id is 8–12 hex
/// digits of the id's tail). A name with any other character, or fewer than 8 hex digits, is
/// fine: `backup`, `cafe`, `deadbeef-nightly`, `2026-12-01`.
pub fn check_unique_name(name: &str) -> Result<(), NameError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong { len: name.len() });
    }
    if let Some((at, c)) = name.char_indices().find(|(_, c)| c.is_control()) {
        return Err(NameError::ControlCharacter {
            code: u32::from(c),
            at,
        });
    }
    if name.trim() != name {
        return Err(NameError::Padded {
            name: name.to_string(),
        });
    }
    let shape = if Uuid::try_parse(name).is_ok() {
        Some("a UUID")
    } else if (8..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some("8 to 32 hex digits, like a short job id")
    } else {
        None
    };
    match shape {
        Some(shape) => Err(NameError::IdShaped {
            name: name.to_string(),
            shape,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_people_use_pass() {
        for ok in [
            "backup",
            "photos-sync",
            "cafe",
            "1234567",
            "deadbeef-nightly",
            "2026-12-01",
            "nächtliche Sicherung",
            "a b",
            &"n".repeat(256),
        ] {
            assert_eq!(check_unique_name(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn the_limit_is_in_bytes() {
        // 'é' is two bytes in UTF-8: 129 of them are 258 bytes.
        let name = "é".repeat(129);
        assert_eq!(
            check_unique_name(&name),
            Err(NameError::TooLong { len: 258 })
        );
        assert!(check_unique_name(&"n".repeat(257)).is_err());
    }

    #[test]
    fn control_characters_are_refused_with_their_place() {
        assert_eq!(
            check_unique_name("a\nb"),
            Err(NameError::ControlCharacter { code: 0x0a, at: 1 })
        );
        assert_eq!(
            check_unique_name("x\u{1b}[31m"),
            Err(NameError::ControlCharacter { code: 0x1b, at: 1 })
        );
        assert!(check_unique_name("tab\there").is_err());
        assert!(check_unique_name("del\u{7f}").is_err());
        assert!(check_unique_name("c1\u{85}").is_err());
    }

    /// A name a shell cannot give back as typed: `backwork show padded` must find the job
    /// `list` shows as `padded`.
    #[test]
    fn white_space_at_either_end_is_refused() {
        for padded in [" padded ", "padded ", " padded", "x\u{a0}", "\u{2003}y"] {
            assert!(
                matches!(check_unique_name(padded), Err(NameError::Padded { .. })),
                "{padded:?}"
            );
        }
        assert_eq!(check_unique_name("a b"), Ok(()));
    }

    #[test]
    fn id_shapes_are_refused() {
        for id in [
            "0193a1b2-c3d4-7e5f-8a9b-0123456789ab",
            "0193A1B2-C3D4-7E5F-8A9B-0123456789AB",
            "0193a1b2c3d47e5f8a9b0123456789ab",
            "{0193a1b2-c3d4-7e5f-8a9b-0123456789ab}",
            "urn:uuid:0193a1b2-c3d4-7e5f-8a9b-0123456789ab",
            "deadbeef",
            "0123456789ab",
            "DEADBEEFcafe",
        ] {
            assert!(
                matches!(check_unique_name(id), Err(NameError::IdShaped { .. })),
                "{id:?}"
            );
        }
    }
}
