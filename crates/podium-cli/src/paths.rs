//! Where Podium keeps its database and finds its bundled tasks.

use std::path::PathBuf;

/// `$XDG_DATA_HOME/podium/podium.db`, else `~/.local/share/podium/podium.db`.
pub(crate) fn default_db() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("podium").join("podium.db")
}

/// The bundled `tasks/` folder: `PODIUM_TASKS_DIR`, else the one in the
/// source tree this binary was built from, else `./tasks`.
pub(crate) fn bundled_tasks_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PODIUM_TASKS_DIR") {
        return PathBuf::from(dir);
    }
    let built_from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tasks");
    if built_from.is_dir() {
        return built_from.canonicalize().unwrap_or(built_from);
    }
    PathBuf::from("tasks")
}
