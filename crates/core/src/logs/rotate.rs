//! The file steps of a log rotation (see the module doc of `logs`). Blocking; the
//! runtime call (ReopenContainerLog) stays with the caller.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{COMPRESS_SUFFIX, TMP_SUFFIX};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotatePolicy {
    /// containerLogMaxSize in bytes; negative disables rotation.
    pub max_size: i64,
    /// containerLogMaxFiles (at least 2).
    pub max_files: i32,
}

/// Every `<path>.*` file, sorted by name (so oldest first: the suffix is a timestamp).
pub fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let Some(dir) = path.parent() else {
        return Vec::new();
    };
    let Some(base) = path
        .file_name()
        .map(|n| format!("{}.", n.to_string_lossy()))
    else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&base))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// Upstream isInUse: temporary files, and plain files whose compressed copy exists,
/// are leftovers; everything else is a rotated log.
fn is_in_use(file: &Path, all: &[PathBuf]) -> bool {
    let name = file.to_string_lossy();
    if name.ends_with(TMP_SUFFIX) {
        return false;
    }
    if name.ends_with(COMPRESS_SUFFIX) {
        return true;
    }
    let compressed = format!("{name}{COMPRESS_SUFFIX}");
    !all.iter().any(|f| f.to_string_lossy() == compressed)
}

pub fn in_use(files: &[PathBuf]) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|f| is_in_use(f, files))
        .cloned()
        .collect()
}

/// Steps 1-3: drop leftovers, keep at most `max_files - 2` rotated files, compress the
/// uncompressed ones.
pub fn prepare(path: &Path, policy: &RotatePolicy) -> std::io::Result<()> {
    let all = rotated_files(path);
    for f in all.iter().filter(|f| !is_in_use(f, &all)) {
        remove_if_exists(f)?;
    }
    let mut logs = in_use(&all);
    let keep = (policy.max_files - 2).max(0) as usize;
    if logs.len() > keep {
        for f in logs.drain(..logs.len() - keep) {
            remove_if_exists(&f)?;
        }
    }
    for f in logs {
        if !f.to_string_lossy().ends_with(COMPRESS_SUFFIX) {
            compress(&f)?;
        }
    }
    Ok(())
}

fn remove_if_exists(f: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(f) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// gzip `file` to `file.gz` (through `file.gz.tmp`), then remove `file`.
pub fn compress(file: &Path) -> std::io::Result<()> {
    let gz = PathBuf::from(format!("{}{COMPRESS_SUFFIX}", file.display()));
    let tmp = PathBuf::from(format!("{}{TMP_SUFFIX}", gz.display()));
    let result = (|| {
        let mut input = BufReader::new(File::open(file)?);
        let out = BufWriter::new(File::create(&tmp)?);
        let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        std::io::copy(&mut input, &mut enc)?;
        let mut out = enc.finish()?;
        out.flush()?;
        out.get_ref().sync_all()?;
        drop(out);
        std::fs::rename(&tmp, &gz)?;
        std::fs::remove_file(file)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Step 4 (the file half): rename `path` to `path.<YYYYMMDD-hhmmss>`; returns the new
/// name. `epoch_secs` is the time (UTC) the name carries.
pub fn rename_current(path: &Path, epoch_secs: i64) -> std::io::Result<PathBuf> {
    let mut rotated = PathBuf::from(format!("{}.{}", path.display(), timestamp(epoch_secs)));
    // Two rotations within one second: keep both.
    let mut n = 1;
    while rotated.exists() {
        rotated = PathBuf::from(format!("{}.{}-{n}", path.display(), timestamp(epoch_secs)));
        n += 1;
    }
    std::fs::rename(path, &rotated)?;
    Ok(rotated)
}

/// Go's "20060102-150405" layout, UTC.
pub fn timestamp(epoch_secs: i64) -> String {
    let days = epoch_secs.div_euclid(86_400);
    let secs = epoch_secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn timestamps_like_go() {
        assert_eq!(timestamp(0), "19700101-000000");
        assert_eq!(timestamp(1_704_067_199), "20231231-235959");
        assert_eq!(timestamp(1_709_210_096), "20240229-123456");
    }

    #[test]
    fn rotation_keeps_max_files_and_compresses_all_but_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let policy = RotatePolicy {
            max_size: 10,
            max_files: 3,
        };
        for i in 0..4 {
            std::fs::write(&path, format!("line {i}\n")).unwrap();
            prepare(&path, &policy).unwrap();
            rename_current(&path, 1_700_000_000 + i).unwrap();
        }
        std::fs::write(&path, "current\n").unwrap();
        // max_files 3 counts the current file: one older (compressed) and the newest.
        assert_eq!(
            names(dir.path()),
            ["0.log", "0.log.20231114-221322.gz", "0.log.20231114-221323"]
        );
        let policy = RotatePolicy {
            max_size: 10,
            max_files: 5,
        };
        for i in 4..8 {
            prepare(&path, &policy).unwrap();
            rename_current(&path, 1_700_000_000 + i).unwrap();
            std::fs::write(&path, format!("line {i}\n")).unwrap();
        }
        assert_eq!(
            names(dir.path()),
            [
                "0.log",
                "0.log.20231114-221324.gz",
                "0.log.20231114-221325.gz",
                "0.log.20231114-221326.gz",
                "0.log.20231114-221327"
            ]
        );
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut super::super::open_log_file(&dir.path().join("0.log.20231114-221325.gz")).unwrap(),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, "line 4\n");
    }

    #[test]
    fn leftovers_of_an_interrupted_rotation_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.log");
        std::fs::write(dir.path().join("1.log.20240101-000000"), "a").unwrap();
        std::fs::write(dir.path().join("1.log.20240101-000000.gz"), "b").unwrap();
        std::fs::write(dir.path().join("1.log.20240101-000001.gz.tmp"), "c").unwrap();
        std::fs::write(&path, "d").unwrap();
        prepare(
            &path,
            &RotatePolicy {
                max_size: 1,
                max_files: 5,
            },
        )
        .unwrap();
        assert_eq!(names(dir.path()), ["1.log", "1.log.20240101-000000.gz"]);
    }
}
