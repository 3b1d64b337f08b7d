//! Helpers shared by the integration tests.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
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

/// Is this a CI run? `CI` set to anything but empty, `0` or `false`: there a missing
/// browser fails the browser checks instead of skipping them.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// The headless Chromium to run `check` (what the test renders, for the message) with:
/// `$POOLTRACK_CHROMIUM` if set, else `/usr/bin/chromium`, else `chromium` or
/// `chromium-browser` on `PATH`.
///
/// With none found, under CI (see [`in_ci`]) this panics; elsewhere it returns `None`
/// after saying on stderr what is skipped and how to run it. The message goes through
/// `io::stderr()`, not `eprintln!`: libtest captures only the print macros, so a plain
/// `cargo test` shows it, next to the test that passed without checking anything.
pub fn browser(check: &str) -> Option<PathBuf> {
    if let Some(given) = std::env::var_os("POOLTRACK_CHROMIUM").filter(|v| !v.is_empty()) {
        let given = PathBuf::from(given);
        // Asked for by name: a wrong path is a mistake to report, not a reason to skip.
        assert!(
            is_executable(&given),
            "{check}: POOLTRACK_CHROMIUM={} is not an executable file",
            given.display()
        );
        return Some(given);
    }
    let default = PathBuf::from("/usr/bin/chromium");
    if is_executable(&default) {
        return Some(default);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .flat_map(|dir| [dir.join("chromium"), dir.join("chromium-browser")])
            .find(|p| is_executable(p))
    });
    if on_path.is_some() {
        return on_path;
    }
    let why = "/usr/bin/chromium not found (nor chromium or chromium-browser on PATH)";
    let how = "install Debian's chromium (apt-get install chromium) or set \
               POOLTRACK_CHROMIUM to a Chromium binary";
    assert!(
        !in_ci(),
        "{check}: {why}, and CI is set, so the check may not be skipped: {how}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {check}: {why}; {how} to run it, or run with CI=true to make this a failure"
    );
    None
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs the headless Chromium `browser` on `args`, killing it after a minute.
///
/// Its stdout and stderr go to files, not pipes: a pipe holds 64 KiB, and a page
/// dumped with `--dump-dom` can be larger, so a Chromium writing to a pipe nobody
/// reads while we poll would block until the kill. (Files also keep us from waiting
/// on helper processes that inherit the descriptors.)
pub fn chromium(browser: &Path, args: &[String]) -> Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut out = tempfile::tempfile().expect("a file for chromium's stdout");
    let mut err = tempfile::tempfile().expect("a file for chromium's stderr");
    let mut child = Process::new(browser)
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
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("stdout file"))
        .stderr(err.try_clone().expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", browser.display()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read_all = |file: &mut std::fs::File| {
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).expect("rewind");
        file.read_to_end(&mut bytes)
            .expect("read chromium's output");
        bytes
    };
    Output {
        status,
        stdout: read_all(&mut out),
        stderr: read_all(&mut err),
    }
}

/// Asserts that Chromium exited 0, showing the end of its stderr if not.
pub fn assert_chromium_ok(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: String = {
        let lines: Vec<&str> = stderr.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    assert!(
        out.status.success(),
        "chromium {what} failed ({}); its stderr ends:\n{tail}",
        out.status
    );
}

/// Renders `url` in headless Chromium to `png` at `window` ("W,H") and checks that it
/// drew a page with charts, not a blank one.
pub fn assert_screenshot_has_charts(browser: &Path, png: &Path, window: &str, url: String) {
    let shot = chromium(
        browser,
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={window}"),
            url,
        ],
    );
    assert_chromium_ok(&shot, "--screenshot");
    let bytes = std::fs::read(png).expect("a screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        bytes.len() > 50_000,
        "a page with charts, not a blank one: {} bytes",
        bytes.len()
    );
}

/// The helper reads a `--dump-dom` far over a pipe's 64 KiB: Chromium used to block
/// writing it while the helper waited for it to exit.
#[test]
fn chromium_dump_dom_of_a_page_over_64_kib() {
    let Some(browser) = browser("headless Chromium check of the test helper on a large page")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("big.html");
    let rows = (0..20_000).fold(String::new(), |mut s, i| {
        s.push_str(&format!("<p id=\"row-{i}\">row {i}</p>\n"));
        s
    });
    std::fs::write(
        &page,
        format!("<!doctype html><html><body>\n{rows}</body></html>\n"),
    )
    .expect("write the page");
    let start = Instant::now();
    let dom = chromium(
        &browser,
        &[
            "--dump-dom".to_owned(),
            format!("file://{}", page.display()),
        ],
    );
    assert_chromium_ok(&dom, "--dump-dom");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.len() > 256 * 1024,
        "the whole page: {} bytes",
        dom.len()
    );
    assert!(
        dom.contains("<p id=\"row-19999\">row 19999</p>"),
        "to its last row"
    );
    assert!(start.elapsed() < Duration::from_secs(30));
}
