//! Topic selectors: which topics a subscription follows, or an
//! authorization covers.

use std::{fmt, sync::Arc};

use url::Url;
use urlpattern::{UrlPattern, UrlPatternInit, UrlPatternMatchInput, UrlPatternOptions};

/// The longest selector text accepted, in bytes (a URL pattern compiles to
/// regular expressions; a bound keeps that cost bounded).
pub const MAX_SELECTOR_LEN: usize = 2048;

/// An expression matched against an update's topics.
///
/// | kind | constructor | matches | standard |
/// | --- | --- | --- | --- |
/// | wildcard | [`any`](Self::any), or the text `*` anywhere | every topic | Mercure §"Matcher Types" (`*`) |
/// | exact | [`exact`](Self::exact) | the same bytes, case-sensitive, no normalization | Mercure `exact` matcher |
/// | URL pattern | [`url_pattern`](Self::url_pattern) | topics that parse as URLs and match the pattern (`https://example.com/books/:id`) | [WHATWG URL Pattern](https://urlpattern.spec.whatwg.org/), via the `urlpattern` crate, `ignoreCase` off; Mercure `urlpattern` matcher |
/// | URI template | [`uri_template`](Self::uri_template) | the topic itself, or any expansion of the template (`https://example.com/books/{id}`) | [RFC 6570](https://www.rfc-editor.org/rfc/rfc6570) level 1; Mercure before standardization (`topic` selectors) |
///
/// A URL pattern matches with the `regex` crate, whose matching time is
/// linear in the topic's length (the Mercure spec's "URL-Pattern Denial of
/// Service" requirement). A topic that is not a URL (`chat`, `a b`) never
/// matches a URL pattern. A relative pattern (`/books/:id`) or topic needs a
/// base: [`url_pattern_with_base`](Self::url_pattern_with_base).
///
/// A level-1 URI template is literal text with `{name}` expressions; an
/// expression matches what RFC 6570's simple string expansion can produce:
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`) and `%XX` escapes, so
/// `{id}` never spans a `/`. Operators (`{+path}`, `{?q}`) and lists are
/// levels 2 to 4 and are refused.
///
/// ```
/// use axum_sse::hub::TopicSelector;
///
/// let book = TopicSelector::url_pattern("https://example.com/books/:id")?;
/// assert!(book.matches("https://example.com/books/1"));
/// assert!(!book.matches("https://example.com/books/1/reviews"));
///
/// let template = TopicSelector::uri_template("https://example.com/books/{id}")?;
/// assert!(template.matches("https://example.com/books/1"));
/// assert!(!template.matches("https://example.com/authors/1"));
///
/// assert!(TopicSelector::exact("chat").matches("chat"));
/// assert!(!TopicSelector::exact("chat").matches("Chat"));
/// assert!(TopicSelector::any().matches("anything"));
/// # Ok::<(), axum_sse::hub::SelectorError>(())
/// ```
#[derive(Clone)]
pub struct TopicSelector {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Any,
    Exact(Arc<str>),
    Template {
        text: Arc<str>,
        regex: regex::Regex,
    },
    Pattern {
        text: Arc<str>,
        pattern: Arc<UrlPattern>,
        base: Option<Arc<Url>>,
    },
}

/// Why a selector's text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectorError {
    /// Longer than [`MAX_SELECTOR_LEN`] bytes.
    TooLong,
    /// A control or format character (Mercure forbids them in topics and
    /// matchers: they enable spoofing).
    ControlCharacter,
    /// Not a level-1 URI template; the text says where.
    InvalidTemplate(String),
    /// Not a URL pattern (or a relative one without a base); the text says
    /// why.
    InvalidUrlPattern(String),
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong => write!(
                f,
                "a topic selector is longer than {MAX_SELECTOR_LEN} bytes"
            ),
            Self::ControlCharacter => {
                f.write_str("a topic selector contains a control or format character")
            }
            Self::InvalidTemplate(why) => write!(f, "invalid URI template: {why}"),
            Self::InvalidUrlPattern(why) => write!(f, "invalid URL pattern: {why}"),
        }
    }
}

impl std::error::Error for SelectorError {}

/// Whether `text` holds a C0 or C1 control, DEL, or one of the common
/// format characters (bidirectional and zero-width controls, BOM): the
/// characters Mercure forbids in topics, matchers, ids and types.
pub(crate) fn has_control(text: &str) -> bool {
    text.chars().any(|c| {
        c.is_control()
            || matches!(c,
                '\u{00AD}' | '\u{061C}' | '\u{180E}'
                | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
    })
}

fn check(text: &str) -> Result<(), SelectorError> {
    if text.len() > MAX_SELECTOR_LEN {
        return Err(SelectorError::TooLong);
    }
    if has_control(text) {
        return Err(SelectorError::ControlCharacter);
    }
    Ok(())
}

impl TopicSelector {
    /// Every topic (Mercure's `*`).
    pub const fn any() -> Self {
        Self { kind: Kind::Any }
    }

    /// The topic `topic`, byte for byte. The text `*` is the wildcard.
    pub fn exact(topic: impl Into<Arc<str>>) -> Self {
        let topic = topic.into();
        if &*topic == "*" {
            return Self::any();
        }
        Self {
            kind: Kind::Exact(topic),
        }
    }

    /// [`exact`](Self::exact) after checking the text (length, control
    /// characters), for text a client sent.
    ///
    /// # Errors
    ///
    /// [`SelectorError::TooLong`], [`SelectorError::ControlCharacter`].
    pub fn try_exact(topic: &str) -> Result<Self, SelectorError> {
        check(topic)?;
        Ok(Self::exact(topic))
    }

    /// An RFC 6570 level-1 URI template; `*` is the wildcard. Matches the
    /// text itself too (a template without expressions is an exact topic).
    ///
    /// # Errors
    ///
    /// [`SelectorError::InvalidTemplate`] for an unbalanced brace, an empty
    /// or non-level-1 expression; [`SelectorError::TooLong`],
    /// [`SelectorError::ControlCharacter`].
    pub fn uri_template(template: &str) -> Result<Self, SelectorError> {
        check(template)?;
        if template == "*" {
            return Ok(Self::any());
        }
        const EXPANSION: &str = "(?:[A-Za-z0-9\\-._~]|%[0-9A-Fa-f]{2})*";
        let mut regex = String::with_capacity(template.len() + 16);
        regex.push_str("\\A(?:");
        regex.push_str(&regex::escape(template));
        regex.push_str(")\\z|\\A");
        let mut rest = template;
        while let Some(open) = rest.find(['{', '}']) {
            if rest.as_bytes()[open] == b'}' {
                return Err(SelectorError::InvalidTemplate(format!(
                    "`}}` without `{{` at byte {}",
                    template.len() - rest.len() + open
                )));
            }
            regex.push_str(&regex::escape(&rest[..open]));
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| SelectorError::InvalidTemplate("`{` without `}`".to_owned()))?
                + open;
            let name = &rest[open + 1..close];
            let level1 = !name.is_empty()
                && name.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'%')
                });
            if !level1 {
                return Err(SelectorError::InvalidTemplate(format!(
                    "`{{{name}}}` is not a level-1 expression (`{{name}}`)"
                )));
            }
            regex.push_str(EXPANSION);
            rest = &rest[close + 1..];
        }
        regex.push_str(&regex::escape(rest));
        regex.push_str("\\z");
        let regex = regex::Regex::new(&regex)
            .map_err(|err| SelectorError::InvalidTemplate(err.to_string()))?;
        Ok(Self {
            kind: Kind::Template {
                text: template.into(),
                regex,
            },
        })
    }

    /// An absolute URL pattern (`https://example.com/books/:id`), per the
    /// WHATWG URL Pattern standard; `*` is the wildcard.
    ///
    /// # Errors
    ///
    /// [`SelectorError::InvalidUrlPattern`] for a pattern the standard
    /// refuses, or a relative one; [`SelectorError::TooLong`],
    /// [`SelectorError::ControlCharacter`].
    pub fn url_pattern(pattern: &str) -> Result<Self, SelectorError> {
        Self::pattern(pattern, None)
    }

    /// A URL pattern, relative ones (`/books/:id`) resolved against `base`
    /// (Mercure: the hub's URL); relative topics are resolved against
    /// `base` too when matched.
    ///
    /// # Errors
    ///
    /// As [`url_pattern`](Self::url_pattern), and
    /// [`SelectorError::InvalidUrlPattern`] when `base` is not an absolute
    /// URL.
    pub fn url_pattern_with_base(pattern: &str, base: &str) -> Result<Self, SelectorError> {
        let base = Url::parse(base)
            .map_err(|err| SelectorError::InvalidUrlPattern(format!("base URL: {err}")))?;
        Self::pattern(pattern, Some(Arc::new(base)))
    }

    fn pattern(pattern: &str, base: Option<Arc<Url>>) -> Result<Self, SelectorError> {
        check(pattern)?;
        if pattern == "*" {
            return Ok(Self::any());
        }
        let invalid = |err: urlpattern::Error| SelectorError::InvalidUrlPattern(err.to_string());
        let init = UrlPatternInit::parse_constructor_string::<regex::Regex>(
            pattern,
            base.as_deref().cloned(),
        )
        .map_err(invalid)?;
        let compiled = <UrlPattern>::parse(init, UrlPatternOptions::default()).map_err(invalid)?;
        Ok(Self {
            kind: Kind::Pattern {
                text: pattern.into(),
                pattern: Arc::new(compiled),
                base,
            },
        })
    }

    /// The selector's text as given (`*` for the wildcard).
    pub fn as_str(&self) -> &str {
        match &self.kind {
            Kind::Any => "*",
            Kind::Exact(text) | Kind::Template { text, .. } | Kind::Pattern { text, .. } => text,
        }
    }

    /// Whether `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        self.matches_topic(&Topic::new(topic))
    }

    /// Whether `topic` (parsed once per event) matches.
    pub(crate) fn matches_topic(&self, topic: &Topic) -> bool {
        match &self.kind {
            Kind::Any => true,
            Kind::Exact(text) => **text == *topic.name,
            Kind::Template { regex, .. } => regex.is_match(&topic.name),
            Kind::Pattern { pattern, base, .. } => {
                let url = match (&topic.url, base) {
                    (Some(url), _) => url.clone(),
                    // A relative topic, resolved against this pattern's base.
                    (None, Some(base)) => match base.join(&topic.name) {
                        Ok(url) => url,
                        Err(_) => return false,
                    },
                    (None, None) => return false,
                };
                pattern
                    .test(UrlPatternMatchInput::Url(url))
                    .unwrap_or(false)
            }
        }
    }
}

impl fmt::Debug for TopicSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Any => "any",
            Kind::Exact(_) => "exact",
            Kind::Template { .. } => "uri_template",
            Kind::Pattern { .. } => "url_pattern",
        };
        f.debug_struct("TopicSelector")
            .field("kind", &kind)
            .field("text", &self.as_str())
            .finish()
    }
}

impl PartialEq for TopicSelector {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(&self.kind) == std::mem::discriminant(&other.kind)
            && self.as_str() == other.as_str()
    }
}

impl Eq for TopicSelector {}

/// A topic of a published update, with its URL parsed once (for URL
/// patterns) when it is an absolute URL.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: Box<str>,
    url: Option<Url>,
}

impl Topic {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            url: Url::parse(name).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_is_byte_for_byte() {
        let s = TopicSelector::exact("https://example.com/a");
        assert!(s.matches("https://example.com/a"));
        assert!(!s.matches("https://example.com/a/"));
        assert!(!s.matches("https://EXAMPLE.com/a"));
        assert!(TopicSelector::exact("*").matches("x"));
        assert_eq!(
            TopicSelector::try_exact("a\u{202E}b").unwrap_err(),
            SelectorError::ControlCharacter
        );
        assert_eq!(
            TopicSelector::try_exact(&"a".repeat(MAX_SELECTOR_LEN + 1)).unwrap_err(),
            SelectorError::TooLong
        );
    }

    #[test]
    fn templates_are_level_one() {
        let s = TopicSelector::uri_template("https://example.com/{a}/x/{b.c}").unwrap();
        assert!(s.matches("https://example.com/1/x/2"));
        assert!(s.matches("https://example.com/%20-._~/x/"));
        assert!(!s.matches("https://example.com/1/2/x/3"));
        assert!(!s.matches("https://example.com/1/x/2?"));
        // The literal text is a topic too.
        assert!(s.matches("https://example.com/{a}/x/{b.c}"));
        // Regex metacharacters in the literal part are literal.
        let dots = TopicSelector::uri_template("a.b/{x}").unwrap();
        assert!(dots.matches("a.b/1"));
        assert!(!dots.matches("axb/1"));
        for bad in [
            "{", "}", "a{}", "{+path}", "{?q}", "{a,b}", "{a:3}", "{a*}", "{a{b}}",
        ] {
            assert!(
                matches!(
                    TopicSelector::uri_template(bad),
                    Err(SelectorError::InvalidTemplate(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn url_patterns_follow_the_standard() {
        let s = TopicSelector::url_pattern("https://example.com/books/:id").unwrap();
        assert!(s.matches("https://example.com/books/1"));
        // Hosts are case-insensitive (URL canonicalization), paths are not.
        assert!(s.matches("https://EXAMPLE.com/books/1"));
        assert!(!s.matches("https://example.com/Books/1"));
        assert!(!s.matches("https://example.com/books/"));
        assert!(!s.matches("books/1"));
        assert!(!s.matches("not a url"));
        let wild = TopicSelector::url_pattern("https://example.com/users/42/*").unwrap();
        assert!(wild.matches("https://example.com/users/42/books/1"));
        assert!(!wild.matches("https://example.com/users/43/books/1"));
        assert!(TopicSelector::url_pattern("/books/:id").is_err());
        let relative = TopicSelector::url_pattern_with_base(
            "/books/:id",
            "https://hub.example/.well-known/mercure",
        )
        .unwrap();
        assert!(relative.matches("/books/7"));
        assert!(relative.matches("https://hub.example/books/7"));
        assert!(!relative.matches("https://other.example/books/7"));
        assert!(TopicSelector::url_pattern("https://example.com/(").is_err());
    }
}
