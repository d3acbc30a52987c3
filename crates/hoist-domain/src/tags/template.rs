//! The Handlebars subset metadata-action's values are written in: text with `{{name}}` and
//! `{{date 'format' tz='UTC'}}` mustaches.
//!
//! Templates are parsed with the policy, each against the names its attribute may use: the
//! global expressions in `value=`, `prefix=`, `suffix=` and `enable=`, the version parts in a
//! `type=semver` `pattern=`. Handlebars renders an unknown name as an empty string; hoist
//! refuses it instead, since a typo would otherwise publish a wrong tag. Like Handlebars,
//! `{{...}}` output is HTML-escaped and `{{{...}}}` is not (sanitization turns the escapes
//! into dashes later, exactly as in the action).

use std::fmt::Debug;

use super::date::DateFormat;

/// The names one kind of attribute may use inside `{{ }}`.
pub(super) trait Vocabulary: Sized + Clone + Debug + PartialEq {
    fn resolve(mustache: &Mustache) -> Result<Self, String>;
}

/// One parsed `{{ name 'param' key='value' }}`.
#[derive(Debug)]
pub(super) struct Mustache {
    name: String,
    params: Vec<String>,
    hash: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Template<E> {
    parts: Vec<Part<E>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part<E> {
    Text(String),
    Expr { expr: E, escape: bool },
}

impl<E: Vocabulary> Template<E> {
    pub(super) fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if rest[..open].ends_with('\\') {
                // `\{{` is Handlebars' way to write mustache braces literally.
                text.push_str(&rest[..open - 1]);
                text.push_str("{{");
                rest = &rest[open + 2..];
                continue;
            }
            text.push_str(&rest[..open]);
            let (triple, body_start) = if rest[open..].starts_with("{{{") {
                (true, open + 3)
            } else {
                (false, open + 2)
            };
            let close = if triple { "}}}" } else { "}}" };
            let body_len = rest[body_start..]
                .find(close)
                .ok_or_else(|| format!("\"{{{{\" is not closed in {source:?}"))?;
            let mustache = Mustache::parse(&rest[body_start..body_start + body_len])?;
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Expr {
                expr: E::resolve(&mustache)?,
                escape: !triple,
            });
            rest = &rest[body_start + body_len + close.len()..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    pub(super) fn render(&self, mut value: impl FnMut(&E) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Expr { expr, escape: true } => out.push_str(&html_escape(&value(expr))),
                Part::Expr {
                    expr,
                    escape: false,
                } => out.push_str(&value(expr)),
            }
        }
        out
    }

    /// The expressions used, in order.
    pub(super) fn expressions(&self) -> impl Iterator<Item = &E> {
        self.parts.iter().filter_map(|part| match part {
            Part::Expr { expr, .. } => Some(expr),
            Part::Text(_) => None,
        })
    }

    /// The template is this one mustache and nothing else (metadata-action's test for a
    /// `{{raw}}` pattern).
    pub(super) fn is_only(&self, wanted: &E) -> bool {
        matches!(self.parts.as_slice(), [Part::Expr { expr, .. }] if expr == wanted)
    }

    /// The text when there is no mustache at all.
    pub(super) fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Text(text)] => Some(text),
            _ => None,
        }
    }
}

/// Handlebars' `escapeExpression`.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '`' => out.push_str("&#x60;"),
            '=' => out.push_str("&#x3D;"),
            c => out.push(c),
        }
    }
    out
}

impl Mustache {
    fn parse(body: &str) -> Result<Self, String> {
        let mut words = Words(body.trim());
        let name = match words.next()? {
            Some(Word::Bare(name))
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                name
            }
            _ => {
                return Err(format!(
                    "{{{{{body}}}}} is not an expression hoist understands (comments, blocks, \
                     partials and whitespace control are not supported)"
                ));
            }
        };
        let mut params = Vec::new();
        let mut hash = Vec::new();
        while let Some(word) = words.next()? {
            match word {
                Word::Quoted(text) => params.push(text),
                Word::Hash(key, value) => hash.push((key, value)),
                Word::Bare(other) => {
                    return Err(format!(
                        "in {{{{{body}}}}}: {other:?} must be a quoted string"
                    ));
                }
            }
        }
        Ok(Mustache { name, params, hash })
    }

    fn only_name(&self) -> Result<&str, String> {
        if self.params.is_empty() && self.hash.is_empty() {
            Ok(&self.name)
        } else {
            Err(format!("{{{{{}}}}} takes no arguments", self.name))
        }
    }
}

enum Word {
    Bare(String),
    Quoted(String),
    Hash(String, String),
}

struct Words<'a>(&'a str);

impl Words<'_> {
    fn next(&mut self) -> Result<Option<Word>, String> {
        let rest = self.0.trim_start();
        let Some(first) = rest.chars().next() else {
            return Ok(None);
        };
        if first == '\'' || first == '"' {
            let (text, after) = quoted(rest)?;
            self.0 = after;
            return Ok(Some(Word::Quoted(text)));
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let bare = &rest[..end];
        if let Some(value) = rest[end..].strip_prefix('=') {
            let (text, after) = quoted(value.trim_start())
                .map_err(|_| format!("{bare}= must be followed by a quoted string"))?;
            self.0 = after;
            return Ok(Some(Word::Hash(bare.to_owned(), text)));
        }
        self.0 = &rest[end..];
        Ok(Some(Word::Bare(bare.to_owned())))
    }
}

/// A `'...'` or `"..."` string at the start of `text`, with `\'`/`\"` escapes; returns it and
/// what follows.
fn quoted(text: &str) -> Result<(String, &str), String> {
    let mut chars = text.char_indices();
    let quote = match chars.next() {
        Some((_, q @ ('\'' | '"'))) => q,
        _ => return Err("expected a quoted string".to_owned()),
    };
    let mut out = String::new();
    let mut escaped = false;
    for (at, c) in chars {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return Ok((out, &text[at + 1..]));
        } else {
            out.push(c);
        }
    }
    Err(format!("string {text:?} is not closed"))
}

/// What `value=`, `prefix=`, `suffix=` and `enable=` may use.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum GlobalExpr {
    Branch,
    Tag,
    Sha,
    IsDefaultBranch,
    IsNotDefaultBranch,
    Date(DateFormat),
}

/// Zone names meaning UTC; hoist carries no time-zone database.
const UTC_NAMES: &[&str] = &["UTC", "Etc/UTC", "GMT", "Etc/GMT"];

impl Vocabulary for GlobalExpr {
    fn resolve(mustache: &Mustache) -> Result<Self, String> {
        if mustache.name == "date" {
            let [format] = mustache.params.as_slice() else {
                return Err("{{date}} takes exactly one quoted format: {{date 'YYYYMMDD'}}".into());
            };
            for (key, value) in &mustache.hash {
                match key.as_str() {
                    "tz" if UTC_NAMES.contains(&value.as_str()) => {}
                    "tz" => {
                        return Err(format!(
                            "{{{{date}}}} time zone {value:?} is not supported: hoist renders dates in UTC only"
                        ));
                    }
                    other => return Err(format!("unknown {{{{date}}}} attribute {other:?}")),
                }
            }
            return Ok(GlobalExpr::Date(DateFormat::parse(format)?));
        }
        if matches!(mustache.name.as_str(), "base_ref" | "commit_date") {
            return Err(format!(
                "{{{{{}}}}} is not supported: hoist does not receive it with a release",
                mustache.name
            ));
        }
        match mustache.only_name()? {
            "branch" => Ok(GlobalExpr::Branch),
            "tag" => Ok(GlobalExpr::Tag),
            "sha" => Ok(GlobalExpr::Sha),
            "is_default_branch" => Ok(GlobalExpr::IsDefaultBranch),
            "is_not_default_branch" => Ok(GlobalExpr::IsNotDefaultBranch),
            other => Err(format!("unknown expression {{{{{other}}}}}")),
        }
    }
}

/// What a `type=semver` `pattern=` may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VersionExpr {
    Version,
    Major,
    Minor,
    Patch,
    Raw,
}

impl Vocabulary for VersionExpr {
    fn resolve(mustache: &Mustache) -> Result<Self, String> {
        match mustache.only_name()? {
            "version" => Ok(VersionExpr::Version),
            "major" => Ok(VersionExpr::Major),
            "minor" => Ok(VersionExpr::Minor),
            "patch" => Ok(VersionExpr::Patch),
            "raw" => Ok(VersionExpr::Raw),
            other => Err(format!(
                "unknown expression {{{{{other}}}}} in a semver pattern \
                 (use version, major, minor, patch or raw)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn semver(source: &str) -> Template<VersionExpr> {
        Template::parse(source).unwrap()
    }

    #[test]
    fn text_and_mustaches_render_in_order() {
        let template = semver("v{{major}}.{{ minor }}-x");
        let out = template.render(|expr| match expr {
            VersionExpr::Major => "1".into(),
            VersionExpr::Minor => "2".into(),
            _ => unreachable!(),
        });
        assert_eq!(out, "v1.2-x");
    }

    #[test]
    fn raw_statement_is_a_lone_raw_mustache() {
        assert!(semver("{{raw}}").is_only(&VersionExpr::Raw));
        assert!(semver("{{ raw }}").is_only(&VersionExpr::Raw));
        assert!(semver("{{ raw}}").is_only(&VersionExpr::Raw));
        assert!(!semver("{{ raw }}.{{ version }}").is_only(&VersionExpr::Raw));
        assert!(Template::<VersionExpr>::parse("{{ version }},{{raw }.").is_err());
    }

    #[test]
    fn escaped_and_unescaped_output_like_handlebars() {
        let escaped: Template<GlobalExpr> = Template::parse("{{branch}}").unwrap();
        let raw: Template<GlobalExpr> = Template::parse("{{{branch}}}").unwrap();
        assert_eq!(escaped.render(|_| "a=b&c".into()), "a&#x3D;b&amp;c");
        assert_eq!(raw.render(|_| "a=b&c".into()), "a=b&c");
        let literal: Template<GlobalExpr> = Template::parse(r"\{{branch}}").unwrap();
        assert_eq!(literal.as_literal(), Some("{{branch}}"));
    }

    #[test]
    fn date_takes_a_format_and_only_utc() {
        let template: Template<GlobalExpr> =
            Template::parse("{{date 'YYYYMMDD' tz='UTC'}}").unwrap();
        assert!(matches!(
            template.expressions().next(),
            Some(GlobalExpr::Date(_))
        ));
        for bad in [
            "{{date}}",
            "{{date YYYY}}",
            "{{date 'YYYY' tz='Asia/Tokyo'}}",
            "{{date 'YYYY' zone='UTC'}}",
        ] {
            assert!(Template::<GlobalExpr>::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_or_unsupported_names_are_errors() {
        for bad in [
            "{{brnch}}",
            "{{base_ref}}",
            "{{#if x}}",
            "{{~branch}}",
            "{{branch",
        ] {
            assert!(Template::<GlobalExpr>::parse(bad).is_err(), "{bad}");
        }
        assert!(Template::<VersionExpr>::parse("{{sha}}").is_err());
    }
}
