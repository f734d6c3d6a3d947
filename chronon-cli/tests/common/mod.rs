//! What the binary's integration tests share: running `chronon` and capturing its output.
// Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::process::Command;

/// The `chronon` binary cargo built for these tests.
pub fn chronon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chronon"))
}

/// Runs `chronon ARGS`: exit code (-1 if killed by a signal), stdout, stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = chronon().args(args).output().expect("run chronon");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
