//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A `pooltrack` command using the store in `dir`.
pub fn pooltrack(store: &Path) -> Command {
    let mut cmd = Command::cargo_bin("pooltrack").expect("the pooltrack binary is built");
    cmd.arg("--store").arg(store).env_remove("POOLTRACK_STORE");
    cmd
}

/// A fixture file in testdata/.
pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// Runs a command, asserts success, and returns its standard output.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).expect("utf-8 output")
}

/// Parses JSON output.
pub fn json_of(cmd: &mut Command) -> serde_json::Value {
    serde_json::from_str(&stdout_of(cmd)).expect("valid JSON output")
}
