//! The `tasksync` binary: everything lives in the library; this only hands over the exit code.

fn main() -> std::process::ExitCode {
    // At most two malloc arenas. glibc gives each thread that allocates concurrently an
    // arena of its own (up to 8 per core) and keeps freed memory in each: measured on a
    // 1M-task backfill (BENCHMARKS.md), peak RSS 107 MB with the default, 73 MB with two,
    // at the same speed. Set before any thread exists.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc tunable; no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    tasksync::cli::run()
}
