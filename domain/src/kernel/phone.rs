//! Phone numbers in international form, as WhatsApp addresses customers (its `wa_id`).

use std::fmt;

/// The digits of an international phone number: 7 to 15 of them, no `+` or separators.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

/// The text is not an international phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an international number of 7 to 15 digits")]
pub struct InvalidPhone;

impl PhoneNumber {
    /// Parses `raw`, dropping `+`, spaces, dashes and parentheses.
    pub fn parse(raw: &str) -> Result<Self, InvalidPhone> {
        let digits: String = raw
            .chars()
            .filter(|c| !matches!(c, '+' | ' ' | '-' | '(' | ')'))
            .collect();
        if (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(InvalidPhone)
        }
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_dropped() {
        assert_eq!(
            PhoneNumber::parse("+62 (812) 345-678").unwrap().as_str(),
            "62812345678"
        );
    }

    #[test]
    fn too_short_too_long_or_not_digits_is_refused() {
        for raw in ["123456", "1234567890123456", "62812x45678", ""] {
            assert_eq!(PhoneNumber::parse(raw), Err(InvalidPhone), "{raw}");
        }
        assert!(PhoneNumber::parse("1234567").is_ok());
        assert!(PhoneNumber::parse("123456789012345").is_ok());
    }
}
