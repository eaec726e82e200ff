//! Backup codes: ten single-use codes for the day the authenticator is lost. Each is 10 characters of Crockford's
//! base32 (50 bits from the OS RNG), printed `xxxxx-xxxxx`, case-insensitive, without the letters that read as
//! digits (i, l, o, u), which are mapped on input as Crockford says. Only a keyed hash is stored
//! ([`crate::mfa::data_key::DataKeys::mac`]).

use rand::RngCore as _;

/// Codes per set.
pub const COUNT: usize = 10;
/// Characters per code, 5 bits each.
const CHARS: usize = 10;
/// Crockford's base32 alphabet, lower case.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new set of codes, formatted for printing.
pub fn generate() -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let mut bytes = [0u8; CHARS];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            // 256 is a multiple of 32, so the low five bits are uniform.
            let chars: String = bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b & 0x1f)]))
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// The canonical form of a typed code (what is hashed), or `None` when it cannot be a backup code: hyphens and
/// spaces dropped, lower case, `o` read as `0`, `i` and `l` as `1`.
pub fn normalize(typed: &str) -> Option<String> {
    if typed.len() > 32 {
        return None;
    }
    let canonical: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        })
        .collect();
    (canonical.len() == CHARS && canonical.bytes().all(|b| ALPHABET.contains(&b))).then_some(canonical)
}

/// Whether a submitted code has the shape of a TOTP code (six digits) rather than a backup code.
pub fn is_totp_shaped(code: &str) -> bool {
    let code = code.trim();
    code.len() == usize::from(crate::mfa::totp::DIGITS) && code.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_ten_distinct_easy_to_type_groups() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), COUNT);
        for code in &codes {
            assert_eq!(code.len(), 11, "{code}");
            assert_eq!(&code[5..6], "-");
            assert!(!code.contains(['i', 'l', 'o', 'u']), "{code}");
            assert_eq!(normalize(code).unwrap(), code.replace('-', ""));
            assert!(!is_totp_shaped(code));
        }
    }

    #[test]
    fn typing_variants_normalize_to_one_form() {
        assert_eq!(normalize("ab0cd-ef1gh").as_deref(), Some("ab0cdef1gh"));
        assert_eq!(normalize("AB0CD EF1GH").as_deref(), Some("ab0cdef1gh"));
        assert_eq!(normalize("abOcdefIgh").as_deref(), Some("ab0cdef1gh"));
        assert_eq!(normalize("ab0cdeflgh").as_deref(), Some("ab0cdef1gh"));
        for junk in [
            "",
            "abcd",
            "ab0cd-ef1gh-x",
            "ab0cd-ef1gu",
            "ab0cd_ef1gh",
            &"a".repeat(40),
            "ab0cd-ef1gé",
        ] {
            assert_eq!(normalize(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn totp_shape_is_six_digits() {
        assert!(is_totp_shaped("123456"));
        assert!(is_totp_shaped(" 123456 "));
        assert!(!is_totp_shaped("12345"));
        assert!(!is_totp_shaped("1234567"));
        assert!(!is_totp_shaped("12345a"));
    }
}
