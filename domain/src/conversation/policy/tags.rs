//! Tag rules, for conversations and contacts alike: trimmed, lower-cased, 1 to 50 characters,
//! no duplicates, at most 20 on one thing.

/// Most tags one conversation or contact may carry.
pub const MAX_TAGS: usize = 20;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 50;

/// Why a set of tags is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// A tag is empty, too long, or holds a NUL.
    #[error("each tag must have 1 to 50 characters")]
    InvalidTag,
    /// More than [`MAX_TAGS`].
    #[error("at most 20 tags")]
    TooMany,
}

/// `tags` normalised (trimmed, lower-cased, first occurrence kept), or why they are refused.
pub fn normalise(tags: &[String]) -> Result<Vec<String>, TagError> {
    let mut normalised: Vec<String> = Vec::new();
    for tag in tags {
        let tag = tag.trim().to_lowercase();
        if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS || tag.contains('\0') {
            return Err(TagError::InvalidTag);
        }
        if !normalised.contains(&tag) {
            normalised.push(tag);
        }
    }
    if normalised.len() > MAX_TAGS {
        return Err(TagError::TooMany);
    }
    Ok(normalised)
}

/// `current` with the (normalised) `added` tags it lacks appended, within [`MAX_TAGS`].
pub fn add(current: &[String], added: &[String]) -> Result<Vec<String>, TagError> {
    let mut tags = current.to_vec();
    tags.extend(added.iter().filter(|t| !current.contains(t)).cloned());
    if tags.len() > MAX_TAGS {
        return Err(TagError::TooMany);
    }
    Ok(tags)
}

/// `current` without the `removed` tags.
pub fn remove(current: &[String], removed: &[String]) -> Vec<String> {
    current
        .iter()
        .filter(|t| !removed.contains(t))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn tags_are_trimmed_lower_cased_and_deduplicated() {
        assert_eq!(
            normalise(&tags(&[" VIP ", "vip", "Billing"])),
            Ok(tags(&["vip", "billing"]))
        );
    }

    #[test]
    fn empty_long_or_nul_tags_are_refused() {
        assert_eq!(normalise(&tags(&["  "])), Err(TagError::InvalidTag));
        assert_eq!(normalise(&["x".repeat(51)]), Err(TagError::InvalidTag));
        assert_eq!(normalise(&tags(&["a\0b"])), Err(TagError::InvalidTag));
        assert!(normalise(&["é".repeat(50)]).is_ok());
    }

    #[test]
    fn more_than_twenty_distinct_tags_are_refused() {
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert_eq!(normalise(&many), Err(TagError::TooMany));
        assert!(normalise(&many[..20]).is_ok());
    }

    #[test]
    fn adding_keeps_the_order_and_skips_present_tags() {
        assert_eq!(
            add(&tags(&["a", "b"]), &tags(&["b", "c"])),
            Ok(tags(&["a", "b", "c"]))
        );
    }

    #[test]
    fn adding_past_twenty_is_refused() {
        let full: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        assert_eq!(add(&full, &tags(&["new"])), Err(TagError::TooMany));
        assert_eq!(add(&full, &tags(&["t0"])), Ok(full.clone()));
    }

    #[test]
    fn removing_drops_only_the_named_tags() {
        assert_eq!(
            remove(&tags(&["a", "b", "c"]), &tags(&["b", "x"])),
            tags(&["a", "c"])
        );
    }
}
