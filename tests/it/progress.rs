//! The progress of a backfill: a bar under a pseudo-terminal (util-linux `script` gives
//! the binary one), that never shares a line with a log line; none through a pipe.

use std::process::Command;

use crate::common::*;

/// The text without ANSI escape sequences (colours, cursor moves, line clears).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Every piece of the screen's output: lines split at `\n` and at `\r` (a redraw).
fn pieces(text: &str) -> Vec<String> {
    strip_ansi(text).split(['\n', '\r']).map(str::to_string).filter(|p| !p.trim().is_empty()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_on_a_terminal_shows_a_bar_that_log_lines_never_run_through() {
    let (sim, start, now) = live_sim(20_000, 10).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), &sim.url, "requests_per_second = 10000", "");
    let command =
        format!("{} --config {} sync --from {start} --to {now}", env!("CARGO_BIN_EXE_tasksync"), cfg.display());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["-qfec", &command, "/dev/null"])
            .env("TEST_SK", SK)
            .env_remove("JOURNAL_STREAM")
            .env_remove("INVOCATION_ID")
            .output()
            .expect("util-linux script runs")
    })
    .await
    .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{screen}");
    let pieces = pieces(&screen);
    let bars: Vec<&String> = pieces.iter().filter(|p| p.contains("windows,") && p.contains("ETA")).collect();
    assert!(!bars.is_empty(), "a bar was drawn:\n{screen}");
    assert!(bars.iter().any(|b| b.starts_with("backfill [") && b.contains("tasks")), "{bars:?}");
    let last = bars.last().unwrap();
    assert!(last.contains("/11 windows"), "ten days and today are planned: {last}");

    let logs: Vec<&String> = pieces.iter().filter(|p| p.contains(" INFO ") || p.contains(" WARN ")).collect();
    assert!(logs.iter().any(|l| l.contains("Backfill planned")), "{screen}");
    assert!(logs.iter().any(|l| l.contains("Window done")), "{screen}");
    for log in &logs {
        assert!(!log.contains("ETA") && !log.contains("windows,"), "a log line ran into the bar: {log}");
    }
    assert!(pieces.iter().any(|p| p.starts_with("Backfill done: windows=11")), "{screen}");
    assert_exact(&dir.path().join("out"), &sim.sim.truth(start, now, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_through_a_pipe_draws_no_bar() {
    let (sim, start, now) = live_sim(5_000, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_file(dir.path(), &sim.url, "requests_per_second = 10000", "");
    let out = tokio::task::spawn_blocking(move || {
        bin().arg("--config").arg(&cfg).args(["sync", "--from", &start.to_string(), "--to", &now.to_string()]).output()
    })
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("ETA") && !stderr.contains('\r') && !stderr.contains('\x1b'),
        "no bar, no escapes: {stderr}"
    );
    assert!(stderr.contains("Backfill planned"), "{stderr}");
}
