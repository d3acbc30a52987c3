//! `os/arch[/variant]`, the platform a CI build reports and an index descriptor carries.
//!
//! The known values are Go's `GOOS`/`GOARCH` lists, which is what the OCI image spec refers
//! to. Aliases such as `x86_64` or `aarch64` are refused with a hint rather than normalized,
//! so that a config says exactly what a registry will show.

use std::fmt;
use std::str::FromStr;

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
];

const KNOWN_ARCH: &[&str] = &[
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64",
    "ppc64le", "riscv64", "s390x", "wasm",
];

/// A validated OCI platform such as `linux/arm64` or `linux/arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("{0:?} is not a platform: expected os/arch or os/arch/variant")]
    Shape(String),
    #[error("{input:?} is not a known operating system ({os:?}){hint}")]
    UnknownOs {
        input: String,
        os: String,
        hint: Hint,
    },
    #[error("{input:?} is not a known architecture{hint}")]
    UnknownArch { input: String, hint: Hint },
    #[error("{input:?} has a variant that {arch} does not have (expected {expected})")]
    BadVariant {
        input: String,
        arch: String,
        expected: &'static str,
    },
}

/// An optional "did you mean" suffix for an error message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hint(Option<&'static str>);

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(suggestion) => write!(f, " (did you mean {suggestion}?)"),
            None => Ok(()),
        }
    }
}

fn arch_alias(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" | "x86-64" | "x64" | "amd65" | "amd" => Some("amd64"),
        "aarch64" | "arm64v8" | "armv8" => Some("arm64"),
        "armhf" | "armv7" | "armv7l" => Some("arm with variant v7"),
        "i386" | "i686" | "x86" => Some("386"),
        "ppc64el" => Some("ppc64le"),
        _ => None,
    }
}

impl Platform {
    pub fn os(&self) -> &str {
        &self.os
    }

    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = input.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => return Err(PlatformError::Shape(input.to_owned())),
        };
        if os.is_empty() || arch.is_empty() || variant.is_some_and(str::is_empty) {
            return Err(PlatformError::Shape(input.to_owned()));
        }
        if !KNOWN_OS.contains(&os) {
            let hint = match os.to_ascii_lowercase().as_str() {
                "linux" => Some("linux"),
                "macos" | "osx" => Some("darwin"),
                "win" | "windows" => Some("windows"),
                _ => None,
            };
            return Err(PlatformError::UnknownOs {
                input: input.to_owned(),
                os: os.to_owned(),
                hint: Hint(hint),
            });
        }
        if !KNOWN_ARCH.contains(&arch) {
            return Err(PlatformError::UnknownArch {
                input: input.to_owned(),
                hint: Hint(arch_alias(arch)),
            });
        }
        if let Some(variant) = variant {
            let expected = match arch {
                "arm" => Some((
                    "v5, v6, v7 or v8",
                    matches!(variant, "v5" | "v6" | "v7" | "v8"),
                )),
                "arm64" => Some(("v8, v8.N, v9 or v9.N", is_arm64_variant(variant))),
                "amd64" => Some((
                    "v1, v2, v3 or v4",
                    matches!(variant, "v1" | "v2" | "v3" | "v4"),
                )),
                _ => None,
            };
            let valid_chars = variant
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.');
            let (expected, ok) =
                expected.unwrap_or(("lowercase letters, digits and dots", valid_chars));
            if !ok {
                return Err(PlatformError::BadVariant {
                    input: input.to_owned(),
                    arch: arch.to_owned(),
                    expected,
                });
            }
        }
        Ok(Platform {
            os: os.to_owned(),
            architecture: arch.to_owned(),
            variant: variant.map(str::to_owned),
        })
    }
}

fn is_arm64_variant(variant: &str) -> bool {
    let Some(rest) = variant.strip_prefix('v') else {
        return false;
    };
    let (major, minor) = rest.split_once('.').unwrap_or((rest, "0"));
    matches!(major, "8" | "9") && !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit())
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_and_three_part_platforms() {
        let p: Platform = "linux/arm64".parse().unwrap();
        assert_eq!(
            (p.os(), p.architecture(), p.variant()),
            ("linux", "arm64", None)
        );
        let p: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(p.variant(), Some("v7"));
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert!("linux/arm64/v8".parse::<Platform>().is_ok());
        assert!("linux/amd64/v3".parse::<Platform>().is_ok());
        assert!("windows/amd64".parse::<Platform>().is_ok());
    }

    #[test]
    fn unknown_architecture_is_named_with_a_hint() {
        let err = "linux/amd65".parse::<Platform>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#""linux/amd65" is not a known architecture (did you mean amd64?)"#
        );
        let err = "linux/aarch64".parse::<Platform>().unwrap_err();
        assert!(err.to_string().contains("did you mean arm64"), "{err}");
    }

    #[test]
    fn malformed_platforms_are_refused() {
        for bad in ["linux", "", "linux/", "/amd64", "linux/amd64/", "a/b/c/d"] {
            assert!(
                matches!(bad.parse::<Platform>(), Err(PlatformError::Shape(_))),
                "{bad:?} should be a shape error"
            );
        }
        assert!(matches!(
            "Linux/amd64".parse::<Platform>(),
            Err(PlatformError::UnknownOs { .. })
        ));
        assert!(matches!(
            "linux/arm/v9".parse::<Platform>(),
            Err(PlatformError::BadVariant { .. })
        ));
        assert!(matches!(
            "linux/amd64/v9".parse::<Platform>(),
            Err(PlatformError::BadVariant { .. })
        ));
    }
}
