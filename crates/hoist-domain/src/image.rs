//! Image references (`host[:port]/path[:tag][@sha256:…]`) and content digests.
//!
//! hoist always names the registry host explicitly: there is no implicit `docker.io`, so a
//! reference in a config or a CI event cannot silently point somewhere else.

use std::fmt;
use std::str::FromStr;

/// A content digest `algorithm:hex`, as the OCI image spec defines it (sha256 or sha512).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("{0:?} is not a digest: expected sha256:<64 hex> or sha512:<128 hex>")]
    Malformed(String),
}

impl Digest {
    /// Exactly the strings [`Digest::from_str`] accepts, as an ECMA regular expression (for
    /// the OpenAPI document).
    pub const PATTERN: &'static str = "^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$";

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn algorithm(&self) -> &str {
        self.0
            .split_once(':')
            .map_or("", |(algorithm, _)| algorithm)
    }

    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, hex)| hex)
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        let hex: String = sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Digest(format!("sha256:{hex}"))
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let malformed = || DigestError::Malformed(input.to_owned());
        let (algorithm, hex) = input.split_once(':').ok_or_else(malformed)?;
        let len = match algorithm {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(malformed()),
        };
        let lower_hex = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex.len() != len || !lower_hex {
            return Err(malformed());
        }
        Ok(Digest(input.to_owned()))
    }
}

/// Serialized as its text, as the API shows it.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reference to an image in a registry: `registry/repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    #[error("{0:?} has no registry host: write it in full, e.g. ghcr.io/owner/name")]
    NoRegistry(String),
    #[error("{input:?} has an invalid registry host {host:?}")]
    BadHost { input: String, host: String },
    #[error(
        "{input:?} has an invalid repository path {path:?}: lowercase letters, digits and \
         . _ - separators between components"
    )]
    BadPath { input: String, path: String },
    #[error(
        "{input:?} has an invalid tag {tag:?}: up to 128 of [A-Za-z0-9_.-], not starting with . or -"
    )]
    BadTag { input: String, tag: String },
    #[error("{input:?} has an invalid digest: {source}")]
    BadDigest { input: String, source: DigestError },
}

// The pieces of `ImageRef::NAME_PATTERN`. Repetitions are bounded so that generators of
// test input (schemathesis, proptest) make names of realistic length.

/// A host label: letters, digits and inner `-`.
macro_rules! label {
    () => {
        "[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?"
    };
}
/// A port, 0 to 65535.
macro_rules! port {
    () => {
        "(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
    };
}
/// A path component: `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
macro_rules! component {
    () => {
        "[a-z0-9]{1,24}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,24}){0,3}"
    };
}

impl ImageRef {
    /// Image names without tag or digest (`host[:port]/path`), as an ECMA regular
    /// expression: every name it admits within [`ImageRef::NAME_MAX`] characters is one
    /// [`ImageRef::from_str`] accepts (which takes longer components and deeper paths too).
    pub const NAME_PATTERN: &'static str = concat!(
        "^(?:",
        label!(),
        "(?:\\.",
        label!(),
        "){0,6}:",
        port!(),
        "|",
        label!(),
        "(?:\\.",
        label!(),
        "){1,6}|localhost)/",
        component!(),
        "(?:/",
        component!(),
        "){0,5}$"
    );
    pub const NAME_MAX: usize = 255;

    /// The registry host, with its port when one was given (`localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry (`octo-org/app`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// Whether `host` is a registry host: DNS labels or an IP address, with an optional port.
pub fn is_valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    let labels_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    port_ok && labels_ok
}

fn looks_like_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

fn is_valid_path_component(component: &str) -> bool {
    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    let bytes = component.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let digest = digest.parse().map_err(|source| ImageRefError::BadDigest {
                    input: input.to_owned(),
                    source,
                })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        let (host, path_and_tag) = match rest.split_once('/') {
            Some((host, path)) if looks_like_host(host) => (host, path),
            _ => return Err(ImageRefError::NoRegistry(input.to_owned())),
        };
        if !is_valid_host(host) {
            return Err(ImageRefError::BadHost {
                input: input.to_owned(),
                host: host.to_owned(),
            });
        }
        // A ':' after the last '/' separates the tag; the host's port was split off above.
        let (path, tag) = match path_and_tag.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
            _ => (path_and_tag, None),
        };
        if path.len() > 255 || !path.split('/').all(is_valid_path_component) {
            return Err(ImageRefError::BadPath {
                input: input.to_owned(),
                path: path.to_owned(),
            });
        }
        if let Some(tag) = tag
            && !is_valid_tag(tag)
        {
            return Err(ImageRefError::BadTag {
                input: input.to_owned(),
                tag: tag.to_owned(),
            });
        }
        Ok(ImageRef {
            registry: host.to_owned(),
            repository: path.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_host_path_tag_and_digest() {
        let r: ImageRef = "ghcr.io/octo-org/app:1.2.3".parse().unwrap();
        assert_eq!(r.registry(), "ghcr.io");
        assert_eq!(r.repository(), "octo-org/app");
        assert_eq!(r.tag(), Some("1.2.3"));
        assert_eq!(r.digest(), None);

        let s = format!("localhost:5000/a/b/c@sha256:{HEX}");
        let r: ImageRef = s.parse().unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "a/b/c");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().hex(), HEX);
        assert_eq!(r.to_string(), s);

        let s = format!("127.0.0.1:5000/x:v1@sha256:{HEX}");
        let r: ImageRef = s.parse().unwrap();
        assert_eq!((r.registry(), r.tag()), ("127.0.0.1:5000", Some("v1")));
        assert_eq!(r.name(), "127.0.0.1:5000/x");
    }

    #[test]
    fn refuses_references_without_a_host() {
        for bad in ["octo-org/app", "app", "app:1.0"] {
            assert!(
                matches!(bad.parse::<ImageRef>(), Err(ImageRefError::NoRegistry(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_malformed_parts() {
        assert!(matches!(
            "ghcr.io/Octo/App".parse::<ImageRef>(),
            Err(ImageRefError::BadPath { .. })
        ));
        assert!(matches!(
            "ghcr.io/a//b".parse::<ImageRef>(),
            Err(ImageRefError::BadPath { .. })
        ));
        assert!(matches!(
            "ghcr.io/a-/b".parse::<ImageRef>(),
            Err(ImageRefError::BadPath { .. })
        ));
        assert!(matches!(
            "ghcr.io/a:-x".parse::<ImageRef>(),
            Err(ImageRefError::BadTag { .. })
        ));
        assert!(matches!(
            "gh_cr.io/a".parse::<ImageRef>(),
            Err(ImageRefError::BadHost { .. })
        ));
        assert!(matches!(
            "localhost:99999/a".parse::<ImageRef>(),
            Err(ImageRefError::BadHost { .. })
        ));
        assert!(matches!(
            "ghcr.io/a@sha256:abc".parse::<ImageRef>(),
            Err(ImageRefError::BadDigest { .. })
        ));
        assert!("ghcr.io/a__b/c.d/e--f".parse::<ImageRef>().is_ok());
    }

    #[test]
    fn digests_need_a_known_algorithm_and_exact_length() {
        assert!(format!("sha256:{HEX}").parse::<Digest>().is_ok());
        assert!(
            format!("sha256:{}", HEX.to_uppercase())
                .parse::<Digest>()
                .is_err()
        );
        assert!(format!("md5:{HEX}").parse::<Digest>().is_err());
        assert!("sha256:".parse::<Digest>().is_err());
    }
}
