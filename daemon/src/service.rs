//! The service manager's notification protocol (`sd_notify`, through the `sd-notify` crate):
//! `READY=1` once the daemon serves, `RELOADING=1` ... `READY=1` around a SIGHUP reload,
//! `STOPPING=1` when it drains, and a one-line `STATUS=` that `systemctl status` shows.
//!
//! Outside a `Type=notify` unit there is no `NOTIFY_SOCKET` and every call does nothing. A
//! failed notification is logged, never fatal: the daemon serves either way.

use sd_notify::NotifyState;

/// The daemon serves: migrations ran, interrupted runs were recovered, the port is open.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(&one_line(status))]);
}

/// A reload starts. systemd wants the monotonic time with it, to tell this reload from the
/// previous one.
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
}

/// The daemon drains and will exit.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("draining")]);
}

/// `STATUS=` must be one line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(cause = %e, "cannot notify the service manager");
    }
}
