//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output, Stdio};
use std::time::{Duration, Instant};

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

/// Runs headless Chromium on `args`, killing it after a minute.
pub fn chromium(args: &[String]) -> Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Process::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("chromium did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("chromium output")
}

/// Renders `url` in headless Chromium to `png` at `window` ("W,H") and checks that it
/// drew a page with charts, not a blank one.
pub fn assert_screenshot_has_charts(png: &Path, window: &str, url: String) {
    let shot = chromium(&[
        format!("--screenshot={}", png.display()),
        format!("--window-size={window}"),
        url,
    ]);
    assert!(shot.status.success(), "chromium --screenshot failed");
    let bytes = std::fs::read(png).expect("a screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        bytes.len() > 50_000,
        "a page with charts, not a blank one: {} bytes",
        bytes.len()
    );
}
