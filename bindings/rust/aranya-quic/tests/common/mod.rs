//! Test helpers: throwaway certificates (made once per test binary by the
//! repo's `go run ./examples/certgen`) and endpoints on 127.0.0.1:0.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use aranya_quic::{Config, Endpoint, Limit};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..").canonicalize().unwrap()
}

/// A folder with ca.pem, alice/bob/carol .crt/.key, and an untrusted
/// `stranger` (from other-ca.pem).
pub fn certs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new("go")
            .current_dir(repo_root())
            .args(["run", "./examples/certgen", "-other-ca", "-out"])
            .arg(&dir)
            .args(["alice", "bob", "carol"])
            .output()
            .expect("run `go run ./examples/certgen` (is Go installed?)");
        assert!(out.status.success(), "certgen failed: {}", String::from_utf8_lossy(&out.stderr));
        dir
    })
}

pub fn read(name: &str) -> Vec<u8> {
    std::fs::read(certs().join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

/// A config for `name` on 127.0.0.1:0, trusting ca.pem, with short limits
/// so that failing tests fail fast.
pub fn config(name: &str) -> Config {
    let mut c = Config::new("127.0.0.1:0".parse().unwrap(), read(&format!("{name}.crt")), read(&format!("{name}.key")), read("ca.pem"));
    c.send_timeout = Limit::After(Duration::from_secs(10));
    c.handshake_timeout = Some(Duration::from_secs(5));
    c.drain_timeout = Some(Duration::from_secs(2));
    c
}

pub fn endpoint(name: &str) -> Endpoint {
    Endpoint::new(config(name)).unwrap_or_else(|e| panic!("Endpoint::new({name}): {e}"))
}

/// Generous bound for a message that was already sent to arrive; only
/// reached when something is broken.
pub const WAIT: Option<Duration> = Some(Duration::from_secs(20));
