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

/// The bundled `tasks/` folder: `PODIUM_TASKS_DIR`, else the one in the source
/// tree cargo runs this binary from, or the one it was built from, else `./tasks`.
pub(crate) fn bundled_tasks_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PODIUM_TASKS_DIR") {
        return PathBuf::from(dir);
    }
    // Under cargo (run, test) the crate folder is named at run time too; a binary
    // that cargo reused from a build in another checkout still finds this one's.
    let run_from = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let built_from = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for crate_dir in run_from.into_iter().chain([built_from]) {
        let tasks = crate_dir.join("../../tasks");
        if tasks.is_dir() {
            return tasks.canonicalize().unwrap_or(tasks);
        }
    }
    PathBuf::from("tasks")
}
