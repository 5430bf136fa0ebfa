//! The command line: `procedurewriter daemon` runs the daemon; the other subcommands are
//! clients of its HTTP API (see [`crate::client`]).

use crate::client::{self, ClientCommand};
use crate::settings::Settings;
use crate::{demo, Daemon, DaemonError};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "procedurewriter",
    version,
    about = "Writes evidence-based clinical procedures"
)]
pub struct Cli {
    /// Base URL of a running daemon (client subcommands).
    #[arg(
        long,
        global = true,
        env = "PROCEDUREWRITER_URL",
        default_value = "http://127.0.0.1:8077"
    )]
    pub url: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (SIGTERM/SIGINT drain it; a second signal exits at once).
    Daemon {
        /// A TOML file layered over the embedded defaults (see etc/procedurewriter.toml).
        #[arg(long, env = "PROCEDUREWRITER_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Create the secret key file (mode 0600) that encrypts stored API keys.
    InitSecret {
        #[arg(long, env = "PROCEDUREWRITER_CONFIG")]
        config: Option<PathBuf>,
        /// Replace an existing key file; refused while secrets are stored under it.
        #[arg(long)]
        force: bool,
    },
    /// Check the configuration as the daemon would load it, the data directory and the secret
    /// key, without starting (as `nginx -t`); exits with the daemon's start-up code on error.
    CheckConfig {
        #[arg(long, env = "PROCEDUREWRITER_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Re-encrypt every stored secret under a new key (the daemon must be stopped).
    RotateSecret {
        #[arg(long, env = "PROCEDUREWRITER_CONFIG")]
        config: Option<PathBuf>,
        /// The new key (base64 in a 0600 file, or - for standard input); required when the
        /// key comes from PROCEDUREWRITER_SECRET_KEY, generated otherwise.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
    /// Start a throw-away daemon on a fresh data directory, write one procedure end to end
    /// with live progress, print the result and stop.
    Demo {
        /// The procedure to write.
        #[arg(default_value = "Anafylaksi behandling")]
        procedure: String,
        /// Data directory to use (default: a new directory under the system temp dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// The client subcommands (they speak to a running daemon over HTTP).
    #[command(flatten)]
    Client(ClientCommand),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Daemon { .. }
            | Command::InitSecret { .. }
            | Command::RotateSecret { .. }
            | Command::Demo { .. }
    ) {
        private_files();
    }
    match cli.command {
        Command::Daemon { config } => daemon(config),
        Command::InitSecret { config, force } => {
            admin(config, |s| crate::admin::init_secret(s, force))
        }
        Command::CheckConfig { config } => {
            let path = config.clone();
            admin(config, |s| crate::admin::check_config(s, path.as_deref()))
        }
        Command::RotateSecret {
            config,
            new_key_file,
        } => admin(config, |s| {
            crate::admin::rotate_secret(s, new_key_file.as_deref())
        }),
        Command::Demo {
            procedure,
            data_dir,
        } => demo::demo(&procedure, data_dir),
        Command::Client(command) => client::run(&cli.url, command),
    }
}

/// Every file the daemon and the admin commands create (the database and its `-wal` and `-shm`,
/// the lock file, run artifacts, key files) is private to the user: umask 077, set first thing,
/// before any thread or file exists (SQLite creates its files with 0644 less the umask).
fn private_files() {
    extern "C" {
        // umask(2): cannot fail; mode_t is u32 on Linux and u16 on the BSDs and macOS.
        fn umask(mask: ModeT) -> ModeT;
    }
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    type ModeT = u16;
    #[cfg(not(any(target_os = "macos", target_os = "ios", target_os = "freebsd")))]
    type ModeT = u32;
    // SAFETY: umask only swaps the process's file-mode mask; no memory is involved.
    unsafe {
        umask(0o077);
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn fail(err: &DaemonError) -> ExitCode {
    eprintln!("procedurewriter: {err}");
    ExitCode::from(err.exit_code() as u8)
}

fn admin(
    config: Option<PathBuf>,
    f: impl FnOnce(&Settings) -> Result<String, DaemonError>,
) -> ExitCode {
    let settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&e.into()),
    };
    init_tracing("warn");
    match f(&settings) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn daemon(config: Option<PathBuf>) -> ExitCode {
    let settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&e.into()),
    };
    init_tracing(&settings.log);
    // Every check that can fail happens before the port opens.
    let listen = settings.listen;
    let prepared = match Daemon::new(settings).config_path(config).prepare() {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let listener = match std::net::TcpListener::bind(listen) {
        Ok(l) => l,
        Err(cause) => {
            return fail(&DaemonError::Listen {
                addr: listen.to_string(),
                cause,
            })
        }
    };
    match prepared.run(listener, termination()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Resolves on the first SIGTERM or SIGINT; a second one exits at once (the next start
/// recovers whatever was running).
pub async fn termination() {
    use futures_util::StreamExt;
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook_tokio::Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(cause = %e, "cannot listen for SIGTERM/SIGINT");
            return std::future::pending().await;
        }
    };
    signals.next().await;
    tokio::task::spawn_local(async move {
        if let Some(sig) = signals.next().await {
            eprintln!("procedurewriter: second signal ({sig}); exiting at once");
            std::process::exit(128 + sig);
        }
    });
}
