//! Writes the man page and the shell completions generated from the command line's own
//! definitions (`src/cli.rs`), for the Debian package: `packaging/deb.sh` runs it at
//! build time, so that neither is committed nor falls behind the code.
//!
//! Usage: `cargo run --example package_docs -- OUT_DIR` writes `OUT_DIR/tasksync.1` and
//! `OUT_DIR/completions/{tasksync.bash,_tasksync,tasksync.fish}`.

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/packaging".into()));
    std::fs::create_dir_all(out.join("completions"))?;
    let command = tasksync::cli::Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    std::fs::write(out.join("tasksync.1"), page)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut command.clone(), "tasksync", out.join("completions"))?;
        println!("Wrote {}", path.display());
    }
    println!("Wrote {}", out.join("tasksync.1").display());
    Ok(())
}
