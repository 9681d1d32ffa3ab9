//! The helper every end-to-end test of the CLI shares: a fresh database in a temporary
//! directory and the real binary run against it with a clean environment.

// Each test file uses a different subset of these helpers.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

pub const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/helsinki/customers.csv");

/// A fresh database in its own temporary directory.
pub struct Db {
    pub dir: tempfile::TempDir,
}

impl Db {
    pub fn new() -> Self {
        Db {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("test.db")
    }

    /// Like [`Db::file`], as a string for an argument list.
    pub fn file_str(&self, name: &str, contents: &str) -> String {
        self.file(name, contents).to_str().unwrap().to_string()
    }

    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Runs the binary against this database with a clean environment.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_outagecast"));
        for (k, _) in std::env::vars() {
            if k.starts_with("OUTAGECAST_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--db").arg(self.path()).args(args);
        cmd.output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?} failed: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Runs a command that must fail; returns its one-line error.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        stderr
    }

    pub fn with_sample() -> Self {
        let db = Db::new();
        db.ok(&["import", "customers", SAMPLE]);
        db
    }
}
