//! Throwaway PostgreSQL servers for tests: Debian's `postgresql` binaries run a
//! cluster in a temporary folder, listening on a free 127.0.0.1 port (and a Unix
//! socket inside that folder), with one fresh database per test.
//!
//! [`database`] is what a test calls: it starts this test process's cluster on
//! first use and returns the URL of a new, empty database in it. A test that
//! needs PostgreSQL does not pass silently without it: it fails saying how to
//! install it, unless `PODIUM_SKIP_PG_TESTS=1` asks to skip such tests.
//!
//! `initdb` and `postgres` refuse to run as root; as root the cluster runs as
//! the unprivileged `postgres` user (Debian's package creates it), its folder
//! owned by that user. `initdb` runs once per machine: its result is kept as a
//! template folder under the temporary directory and copied for each cluster.
//!
//! Cleanup does not depend on the test process ending well: a small watchdog
//! shell reads a pipe from the test process and, when the pipe closes (the
//! process exited, or was killed), stops the server by its exact process id
//! (SIGINT: a fast shutdown; SIGKILL only if it is still there 10 s later) and
//! removes the folder. Nothing ever signals a process group.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Set to 1 to skip the tests that need a PostgreSQL server (they print that
/// they skipped).
pub const SKIP_ENV: &str = "PODIUM_SKIP_PG_TESTS";
/// A folder holding `initdb` and `postgres`, when they are not under
/// `/usr/lib/postgresql/VERSION/bin` or on the `PATH`.
pub const BIN_DIR_ENV: &str = "PODIUM_PG_BIN_DIR";

/// A running throwaway cluster. Dropping it stops the server and removes its folder.
pub struct Cluster {
    port: u16,
    /// The server process, reaped when the cluster is dropped.
    server: Mutex<Option<Child>>,
    /// The watchdog's stdin: closing it stops the server and removes the folder.
    watchdog_pipe: Mutex<Option<ChildStdin>>,
    watchdog: Mutex<Option<Child>>,
    next_database: AtomicU64,
    /// The server's self-signed TLS certificate (for 127.0.0.1 and localhost),
    /// which a client trusts with `sslrootcert=`.
    tls_cert: PathBuf,
}

/// The URL of a new, empty database in this test process's cluster, or `None`
/// when PostgreSQL tests are skipped on purpose. Panics (failing the test)
/// when PostgreSQL is not installed and no skip was asked for.
pub fn database() -> Option<String> {
    database_with_tls_cert().map(|(url, _)| url)
}

/// [`database`], and the server certificate to trust for TLS connections to it
/// (every test cluster also accepts TLS, with a self-signed certificate).
pub fn database_with_tls_cert() -> Option<(String, PathBuf)> {
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        eprintln!("skipped ({SKIP_ENV}=1): a test on a PostgreSQL server");
        return None;
    }
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    let cluster =
        SHARED.get_or_init(|| Cluster::start().unwrap_or_else(|message| panic!("{message}")));
    let url = cluster
        .create_database()
        .unwrap_or_else(|message| panic!("{message}"));
    Some((url, cluster.tls_cert.clone()))
}

/// A self-signed certificate for 127.0.0.1 and localhost in `dir`
/// (`server.crt`, `server.key`, the key readable only by its owner, `user`),
/// and the settings that make the server offer TLS with it.
fn tls_settings(dir: &Path, user: Option<(u32, u32)>) -> Result<(PathBuf, Vec<String>), String> {
    use std::os::unix::fs::PermissionsExt;
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(|e| format!("cannot make a test certificate: {e}"))?;
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    fs::write(&cert, certified.cert.pem()).map_err(|e| format!("{}: {e}", cert.display()))?;
    fs::write(&key, certified.key_pair.serialize_pem())
        .map_err(|e| format!("{}: {e}", key.display()))?;
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", key.display()))?;
    if let Some((uid, gid)) = user {
        for path in [&cert, &key] {
            chown(path, Some(uid), Some(gid)).map_err(|e| format!("chown: {e}"))?;
        }
    }
    Ok((
        cert.clone(),
        vec![
            "ssl=on".to_string(),
            format!("ssl_cert_file={}", cert.display()),
            format!("ssl_key_file={}", key.display()),
        ],
    ))
}

impl Cluster {
    /// Starts a cluster of its own (most tests share one through [`database`]),
    /// with durability off (`fsync=off`, `synchronous_commit=off`): a test
    /// database need not survive a crash of the machine.
    pub fn start() -> Result<Cluster, String> {
        Self::start_with(&[
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
        ])
    }

    /// Starts a cluster with these server settings (`NAME=VALUE`) beside the
    /// ones every cluster has (its port, socket folder and 200 connections); e.g.
    /// none for PostgreSQL's durable defaults in a benchmark.
    pub fn start_with(settings: &[&str]) -> Result<Cluster, String> {
        let bin = bin_dir()?;
        let user = server_user()?;
        let template = template_data_dir(&bin, user)?;
        let dir = tempfile::Builder::new()
            .prefix("podium-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary folder: {e}"))?
            .keep();
        let data = dir.join("data");
        let copied = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(&data)
            .status()
            .map_err(|e| format!("cannot run cp: {e}"))?;
        if !copied.success() {
            let _ = fs::remove_dir_all(&dir);
            return Err(format!("copying {} failed", template.display()));
        }
        if let Some((uid, gid)) = user {
            chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        let (tls_cert, tls) = tls_settings(&dir, user)?;
        let settings: Vec<&str> = settings
            .iter()
            .copied()
            .chain(tls.iter().map(String::as_str))
            .collect();
        // A port taken between choosing it and the server binding it makes the
        // server exit at once; another port is then tried.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            match start_server(&bin, user, &dir, port, &settings) {
                Ok((server, watchdog, pipe)) => {
                    return Ok(Cluster {
                        port,
                        server: Mutex::new(Some(server)),
                        watchdog_pipe: Mutex::new(Some(pipe)),
                        watchdog: Mutex::new(Some(watchdog)),
                        next_database: AtomicU64::new(0),
                        tls_cert,
                    });
                }
                Err(message) => last_error = message,
            }
        }
        let _ = fs::remove_dir_all(&dir);
        Err(last_error)
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a new, empty database and returns its URL.
    pub fn create_database(&self) -> Result<String, String> {
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        let name = format!("podium_test_{n}");
        let mut client = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .map_err(|e| format!("connecting to the test cluster: {e}"))?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        Ok(self.url(&name))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Closing the pipe makes the watchdog stop the server and remove the folder.
        drop(
            self.watchdog_pipe
                .lock()
                .ok()
                .and_then(|mut pipe| pipe.take()),
        );
        if let Some(mut server) = self.server.lock().ok().and_then(|mut s| s.take()) {
            let _ = server.wait();
        }
        if let Some(mut watchdog) = self.watchdog.lock().ok().and_then(|mut w| w.take()) {
            let _ = watchdog.wait();
        }
    }
}

/// Starts `postgres` on `port` and its watchdog; waits until it accepts connections.
fn start_server(
    bin: &Path,
    user: Option<(u32, u32)>,
    dir: &Path,
    port: u16,
    settings: &[&str],
) -> Result<(Child, Child, ChildStdin), String> {
    let data = dir.join("data");
    let log_path = dir.join("server.log");
    let log = fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    if let Some((uid, gid)) = user {
        chown(&log_path, Some(uid), Some(gid)).map_err(|e| format!("chown: {e}"))?;
    }
    let mut command = Command::new(bin.join("postgres"));
    command
        .arg("-D")
        .arg(&data)
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=200",
        ])
        .current_dir(dir);
    for setting in settings {
        command.arg("-c").arg(setting);
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    as_user(&mut command, user);
    let mut server = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.join("postgres").display()))?;
    let pid = server.id();
    // The watchdog outlives this process if it must: it waits for its stdin
    // to close, then stops exactly the server it was given.
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(
            r#"cat >/dev/null
               kill -s INT "$1" 2>/dev/null
               i=0
               while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
               if kill -0 "$1" 2>/dev/null; then kill -s KILL "$1"; fi
               rm -rf "$2""#,
        )
        .arg("podium-pg-watchdog")
        .arg(pid.to_string())
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the watchdog shell: {e}"))?;
    let Some(pipe) = watchdog.stdin.take() else {
        return Err("the watchdog has no stdin".into());
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = server.try_wait() {
            // Stop the watchdog (it only removes what is left), keep the folder
            // for the next try on another port.
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            drop(pipe);
            let _ = fs::write(&log_path, "");
            let _ = watchdog.wait();
            return Err(format!("postgres exited ({status}) on port {port}:\n{log}"));
        }
        let ready = fs::read_to_string(data.join("postmaster.pid"))
            .is_ok_and(|pid_file| pid_file.lines().any(|line| line.trim() == "ready"));
        if ready {
            return Ok((server, watchdog, pipe));
        }
        if Instant::now() > deadline {
            drop(pipe);
            let _ = watchdog.wait();
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!("postgres did not become ready in 60 s:\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A data folder made by `initdb` once per machine and PostgreSQL version, kept
/// in the temporary directory; built aside and renamed into place, so a
/// concurrent test process sees either none or a whole one.
fn template_data_dir(bin: &Path, user: Option<(u32, u32)>) -> Result<PathBuf, String> {
    let version = Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.join("postgres").display()))?;
    let version: String = String::from_utf8_lossy(&version.stdout)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    let uid = user.map_or(0, |(uid, _)| uid);
    let template = std::env::temp_dir().join(format!("podium-pg-template-{version}-{uid}"));
    if template.join("PG_VERSION").exists() {
        return Ok(template);
    }
    let building = tempfile::Builder::new()
        .prefix("podium-pg-initdb-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    if let Some((uid, gid)) = user {
        chown(building.path(), Some(uid), Some(gid)).map_err(|e| format!("chown: {e}"))?;
    }
    let data = building.path().join("data");
    let mut command = Command::new(bin.join("initdb"));
    command
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
        .args(["--no-sync", "--no-instructions"])
        .current_dir(building.path());
    as_user(&mut command, user);
    let output = command
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.join("initdb").display()))?;
    if !output.status.success() {
        return Err(format!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // Another process may have won the race; its template is as good as ours.
    if fs::rename(&data, &template).is_err() && !template.join("PG_VERSION").exists() {
        return Err(format!(
            "cannot move the template to {}",
            template.display()
        ));
    }
    Ok(template)
}

/// Runs `command` as `user` (uid, gid) when set (std drops the supplementary groups).
fn as_user(command: &mut Command, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
        command.env("HOME", "/");
    }
}

/// Where `initdb` and `postgres` are; an error says how to install them.
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists());
    on_path.ok_or_else(|| {
        format!(
            "this test needs PostgreSQL's server binaries (initdb, postgres): install Debian's \
             `postgresql` package (`apt-get install -y postgresql`; `.ci/run` does), or set \
             {BIN_DIR_ENV} to their folder; {SKIP_ENV}=1 skips such tests"
        )
    })
}

/// As root, the `postgres` user's (uid, gid) from /etc/passwd; `None` otherwise.
fn server_user() -> Result<Option<(u32, u32)>, String> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                ["postgres", _, uid, gid, ..] => Some((uid.parse().ok()?, gid.parse().ok()?)),
                _ => None,
            }
        })
        .map(Some)
        .ok_or_else(|| {
            "running as root, the test PostgreSQL server needs the unprivileged `postgres` \
             user (Debian's `postgresql` package creates it: `apt-get install -y postgresql`)"
                .to_string()
        })
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| e.to_string())
}
