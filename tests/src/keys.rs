//! Signing keys made with the `openssl` CLI, and signatures checked with it: the
//! independent implementation hoist's signatures are judged by.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::require_tool;

/// An ECDSA P-256 key pair in a temp folder: `private.pem` (PKCS#8) and `public.pem`.
#[derive(Debug)]
pub struct KeyPair {
    dir: TempDir,
}

fn openssl(args: &[&str]) -> std::process::Output {
    let binary = require_tool("openssl", "openssl");
    Command::new(binary)
        .args(args)
        .output()
        .expect("run openssl")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

impl KeyPair {
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`, and its public key.
    pub fn generate() -> KeyPair {
        let dir = tempfile::tempdir().expect("a key folder");
        let private = dir.path().join("private.pem");
        let public = dir.path().join("public.pem");
        let made = openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            path_str(&private),
        ]);
        assert!(made.status.success(), "openssl genpkey: {made:?}");
        let out = openssl(&[
            "pkey",
            "-in",
            path_str(&private),
            "-pubout",
            "-out",
            path_str(&public),
        ]);
        assert!(out.status.success(), "openssl pkey -pubout: {out:?}");
        KeyPair { dir }
    }

    pub fn private(&self) -> PathBuf {
        self.dir.path().join("private.pem")
    }

    pub fn public(&self) -> PathBuf {
        self.dir.path().join("public.pem")
    }

    pub fn public_pem(&self) -> String {
        std::fs::read_to_string(self.public()).expect("read the public key")
    }

    /// Whether `openssl dgst -sha256 -verify` accepts `signature` (ASN.1 DER) of `message`
    /// under this key.
    pub fn openssl_verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let work = tempfile::tempdir().expect("a temp folder");
        let (message_file, signature_file) =
            (work.path().join("message"), work.path().join("sig.der"));
        std::fs::write(&message_file, message).expect("write the message");
        std::fs::write(&signature_file, signature).expect("write the signature");
        let out = openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            path_str(&self.public()),
            "-signature",
            path_str(&signature_file),
            path_str(&message_file),
        ]);
        let said = String::from_utf8_lossy(&out.stdout);
        match (out.status.success(), said.contains("Verified OK")) {
            (true, true) => true,
            (false, false) => false,
            _ => panic!("openssl dgst answered oddly: {out:?}"),
        }
    }
}
