//! Durable file rewrites: every file Grant rewrites goes through [`write()`].
//!
//! Truncating a file and writing it again loses the file when the write
//! fails half-way (a full disk cut a policy mid-string). [`write()`] instead
//! writes a temporary file beside the target (`.<name>.<pid>.<n>.tmp`,
//! created exclusively, readable by its owner only), flushes it to disk,
//! gives it the target's permissions (and owner, where the process may),
//! renames it over the target, and flushes the directory, so that the
//! rename itself survives a crash. Until the rename, the target is not
//! touched: on any error the temporary file is removed and the target is
//! byte-identical. The error names the file and the step that failed.
//!
//! - **Symbolic links**: writing through a link rewrites its target; the
//!   link stays a link. A link to nothing is an error.
//! - **Hard links**: the rename gives the path a new inode, so other hard
//!   links to the old file keep the old text. Rewriting in place would
//!   keep them in step, but a failed write would then lose the file: Grant
//!   chooses the intact file.
//! - **Metadata**: mode bits and owner are kept; extended attributes and
//!   ACLs are not copied.
//! - **Read-only files**: a file the process may not open for writing is
//!   not rewritten, though the rename would get around its mode: the
//!   outcome is the one an in-place write would have.
//! - **A new file** (the path does not exist) is created with mode 0600.
//! - **After the rename**, only flushing the directory can fail: the new
//!   text is then in place, and the error says so ([`WriteError::replaced`]).
//!
//! Append-only files (decision logs, spools) are never rewritten: they are
//! opened for appending, and each append is flushed (`sync_data`) before it
//! is acknowledged, so that an acknowledged record survives a crash. There
//! is no helper for them yet, because nothing appends yet.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::chars::printable;
use crate::source::describe_io;

/// Distinguishes the temporary files of one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many names to try before giving up on creating a temporary file.
const TEMP_ATTEMPTS: u32 = 100;

/// Replaces the contents of the file at `path` with `bytes`, durably: the
/// file holds either its old contents or all of `bytes`, whatever fails.
/// See the [module documentation](self).
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_with(path, bytes, &mut Disk)
}

/// The step of [`write()`] that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Finding the file (following a symbolic link) and reading its
    /// metadata.
    Resolve,
    /// Creating the temporary file.
    Create,
    /// Writing the new contents to the temporary file.
    Write,
    /// Giving the temporary file the original's owner.
    Owner,
    /// Giving the temporary file the original's permissions.
    Permissions,
    /// Flushing the temporary file to disk.
    Sync,
    /// Renaming the temporary file over the original.
    Rename,
    /// Flushing the directory after the rename: the file was replaced.
    SyncDir,
}

/// A file could not be rewritten.
#[derive(Debug, thiserror::Error)]
#[error("cannot write `{}`: {what} failed: {message}; {}", shown(path), outcome(*step))]
pub struct WriteError {
    /// The path as the caller gave it.
    pub path: PathBuf,
    pub step: Step,
    /// The step in words, naming the file it worked on.
    what: String,
    /// The operating system's error, in words.
    message: String,
}

impl WriteError {
    fn new(path: &Path, step: Step, what: String, error: &io::Error) -> WriteError {
        WriteError {
            path: path.to_path_buf(),
            step,
            what,
            message: describe_io(error),
        }
    }

    /// Whether the file had already been replaced when the error happened
    /// (only flushing its directory failed).
    pub fn replaced(&self) -> bool {
        self.step == Step::SyncDir
    }
}

/// What became of the file, for the end of an error message.
fn outcome(step: Step) -> &'static str {
    match step {
        Step::SyncDir => "the new text is in place, but may not survive a crash",
        _ => "the file is unchanged",
    }
}

/// A path for a message: escaped, so that a file name cannot write to the
/// terminal.
fn shown(path: &Path) -> String {
    printable(&path.display().to_string()).into_owned()
}

/// The operations on the temporary file that can fail once it exists: a
/// unit test injects failures here to prove that the original survives
/// each of them.
trait Steps {
    fn write(&mut self, file: &mut File, bytes: &[u8]) -> io::Result<()>;
    fn sync(&mut self, file: &File) -> io::Result<()>;
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
}

/// The real operations.
struct Disk;

impl Steps for Disk {
    fn write(&mut self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)
    }

    fn sync(&mut self, file: &File) -> io::Result<()> {
        file.sync_all()
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
}

fn write_with(path: &Path, bytes: &[u8], steps: &mut dyn Steps) -> Result<(), WriteError> {
    let fail = |step: Step, what: String| {
        move |error: io::Error| WriteError::new(path, step, what, &error)
    };
    let target = resolve(path)?;
    let original = match fs::metadata(&target) {
        Ok(meta) if meta.is_file() => {
            // Opening (without truncating) changes nothing; it asks the
            // system whether this process may write the file.
            let writable = OpenOptions::new().write(true).open(&target);
            writable.map_err(fail(Step::Resolve, "opening it for writing".into()))?;
            Some(meta)
        }
        Ok(_) => {
            let error = io::Error::other("it is not a regular file");
            return Err(fail(Step::Resolve, "reading it".into())(error));
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(fail(Step::Resolve, "reading it".into())(error)),
    };
    let dir = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let (mut file, temp) = create_temp(&dir, &name).map_err(fail(
        Step::Create,
        format!("creating a temporary file in `{}`", shown(&dir)),
    ))?;
    let temp_shown = shown(&temp);
    let written = steps
        .write(&mut file, bytes)
        .map_err(fail(
            Step::Write,
            format!("writing the temporary file `{temp_shown}`"),
        ))
        .and_then(|()| match &original {
            Some(meta) => keep_metadata(&file, meta, path, &temp_shown),
            None => Ok(()),
        })
        .and_then(|()| {
            steps.sync(&file).map_err(fail(
                Step::Sync,
                format!("flushing the temporary file `{temp_shown}` to disk"),
            ))
        });
    drop(file);
    let renamed = written.and_then(|()| {
        steps.rename(&temp, &target).map_err(fail(
            Step::Rename,
            format!("renaming `{temp_shown}` over `{}`", shown(&target)),
        ))
    });
    if let Err(error) = renamed {
        // Best effort: the error that matters is the one above.
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    sync_dir(&dir).map_err(fail(
        Step::SyncDir,
        format!("flushing the directory `{}` to disk", shown(&dir)),
    ))
}

/// The file `path` names: the target of a symbolic link (all links
/// resolved), else `path` itself, existing or not.
fn resolve(path: &Path) -> Result<PathBuf, WriteError> {
    let fail =
        |what: &str, error: &io::Error| WriteError::new(path, Step::Resolve, what.into(), error);
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path).map_err(|error| {
            if error.kind() != io::ErrorKind::NotFound {
                return fail("following the symbolic link", &error);
            }
            let to = fs::read_link(path).map_or_else(|_| String::new(), |t| shown(&t));
            let error = io::Error::other(format!(
                "it is a symbolic link to `{to}`, which does not exist"
            ));
            fail("following the symbolic link", &error)
        }),
        Ok(_) => Ok(path.to_path_buf()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(path.to_path_buf()),
        Err(error) => Err(fail("reading it", &error)),
    }
}

/// Creates `.<name>.<pid>.<n>.tmp` in `dir`, exclusively (never an existing
/// file, nor through a planted link), for its owner only: the text is not
/// for others' eyes until the original's permissions are given to it.
fn create_temp(dir: &Path, name: &str) -> io::Result<(File, PathBuf)> {
    // Keep the temporary name within the usual 255-byte limit.
    let stem: String = name.chars().take(100).collect();
    let pid = std::process::id();
    let mut last = io::Error::other("no name was free");
    for _ in 0..TEMP_ATTEMPTS {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{stem}.{pid}.{n}.tmp"));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&temp) {
            Ok(file) => return Ok((file, temp)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => last = error,
            Err(error) => return Err(error),
        }
    }
    Err(last)
}

/// Gives the temporary file the original's owner (where the process may)
/// and permissions. The owner comes first: changing it clears set-id bits.
fn keep_metadata(
    file: &File,
    original: &fs::Metadata,
    path: &Path,
    temp: &str,
) -> Result<(), WriteError> {
    #[cfg(unix)]
    keep_owner(file, original).map_err(|error| {
        WriteError::new(
            path,
            Step::Owner,
            format!("giving `{temp}` the original's owner"),
            &error,
        )
    })?;
    file.set_permissions(original.permissions())
        .map_err(|error| {
            WriteError::new(
                path,
                Step::Permissions,
                format!("giving `{temp}` the original's permissions"),
                &error,
            )
        })
}

/// The original's owner and group; or its group alone; or neither, when
/// the process may not give them (only root may give a file away).
#[cfg(unix)]
fn keep_owner(file: &File, original: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, fchown};
    let current = file.metadata()?;
    if (current.uid(), current.gid()) == (original.uid(), original.gid()) {
        return Ok(());
    }
    let not_allowed = |error: &io::Error| {
        matches!(
            error.kind(),
            io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput
        )
    };
    match fchown(file, Some(original.uid()), Some(original.gid())) {
        Err(error) if not_allowed(&error) => match fchown(file, None, Some(original.gid())) {
            Err(error) if not_allowed(&error) => Ok(()),
            other => other,
        },
        other => other,
    }
}

/// Flushes a directory, so that a rename in it survives a crash.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    /// A fresh, empty directory for one test.
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("grant-durable-{}", std::process::id()))
            .join(test);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The real operations, but one step fails: `Write` after writing half
    /// of the bytes, as a full disk would.
    struct FailAt(Step);

    impl Steps for FailAt {
        fn write(&mut self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
            if self.0 == Step::Write {
                file.write_all(&bytes[..bytes.len() / 2])?;
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "No space left on device (os error 28)",
                ));
            }
            Disk.write(file, bytes)
        }

        fn sync(&mut self, file: &File) -> io::Result<()> {
            if self.0 == Step::Sync {
                return Err(io::Error::other("Input/output error (os error 5)"));
            }
            Disk.sync(file)
        }

        fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
            if self.0 == Step::Rename {
                return Err(io::Error::other("Device or resource busy (os error 16)"));
            }
            Disk.rename(from, to)
        }
    }

    const OLD: &str = "allow tool \"db.read\" ttl 5m\n";
    const NEW: &str = "allow tool \"db.read\" ttl 5m  # formatted\n";

    #[test]
    fn a_failure_at_any_step_leaves_the_original_and_no_temporary_file() {
        for (step, says, why) in [
            (
                Step::Write,
                "writing the temporary file `",
                "no space left on device (os error 28)",
            ),
            (
                Step::Sync,
                "flushing the temporary file `",
                "input/output error (os error 5)",
            ),
            (
                Step::Rename,
                "renaming `",
                "device or resource busy (os error 16)",
            ),
        ] {
            let dir = scratch(&format!("fail-{step:?}"));
            let path = dir.join("p.grant");
            fs::write(&path, OLD).unwrap();
            let error = write_with(&path, NEW.as_bytes(), &mut FailAt(step)).unwrap_err();
            assert_eq!(error.step, step);
            assert!(!error.replaced());
            let message = error.to_string();
            let named = format!("cannot write `{}`: {says}", path.display());
            assert!(message.starts_with(&named), "{message}");
            let end = format!(" failed: {why}; the file is unchanged");
            assert!(message.ends_with(&end), "{message}");
            assert_eq!(fs::read(&path).unwrap(), OLD.as_bytes(), "{step:?}");
            assert_eq!(names(&dir), ["p.grant"], "{step:?}");
        }
    }

    #[test]
    fn rewrites_and_keeps_permissions_and_owner() {
        let dir = scratch("rewrite");
        let path = dir.join("p.grant");
        fs::write(&path, OLD).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let before = fs::metadata(&path).unwrap();
        write(&path, NEW.as_bytes()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), NEW);
        let after = fs::metadata(&path).unwrap();
        assert_eq!(after.permissions().mode() & 0o7777, 0o640);
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
        assert_ne!(after.ino(), before.ino(), "a new file was renamed in");
        assert_eq!(names(&dir), ["p.grant"]);
    }

    /// Run as root (as in CI containers), the owner can be given: a file
    /// owned by another user keeps its owner.
    #[test]
    fn the_owner_is_kept_where_the_process_may_give_it() {
        let dir = scratch("owner");
        let path = dir.join("p.grant");
        fs::write(&path, OLD).unwrap();
        let given = std::os::unix::fs::chown(&path, Some(1234), Some(5678));
        if given.is_err() {
            // Not root: only the group could be kept, and it already is.
            write(&path, NEW.as_bytes()).unwrap();
            return;
        }
        write(&path, NEW.as_bytes()).unwrap();
        let after = fs::metadata(&path).unwrap();
        assert_eq!((after.uid(), after.gid()), (1234, 5678));
        assert_eq!(fs::read_to_string(&path).unwrap(), NEW);
    }

    #[test]
    fn through_a_symlink_the_target_is_rewritten() {
        let dir = scratch("symlink");
        fs::create_dir(dir.join("real")).unwrap();
        let target = dir.join("real/p.grant");
        fs::write(&target, OLD).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.join("link.grant");
        symlink("real/p.grant", &link).unwrap();
        write(&link, NEW.as_bytes()).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("real/p.grant"));
        assert_eq!(fs::read_to_string(&target).unwrap(), NEW);
        let mode = fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o640);
        // The temporary file was made beside the target, and is gone.
        assert_eq!(names(&dir.join("real")), ["p.grant"]);
        assert_eq!(names(&dir), ["link.grant", "real"]);
    }

    #[test]
    fn a_link_to_nothing_is_an_error_and_creates_nothing() {
        let dir = scratch("dangling");
        let link = dir.join("p.grant");
        symlink("gone.grant", &link).unwrap();
        let error = write(&link, NEW.as_bytes()).unwrap_err();
        assert_eq!(error.step, Step::Resolve);
        assert_eq!(
            error.to_string(),
            format!(
                "cannot write `{}`: following the symbolic link failed: it is a symbolic link \
                 to `gone.grant`, which does not exist; the file is unchanged",
                link.display()
            )
        );
        assert_eq!(names(&dir), ["p.grant"]);
    }

    #[test]
    fn a_directory_is_not_rewritten() {
        let dir = scratch("directory");
        fs::create_dir(dir.join("x.grant")).unwrap();
        let error = write(&dir.join("x.grant"), NEW.as_bytes()).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("reading it failed: it is not a regular file; the file is unchanged"),
            "{error}"
        );
        assert_eq!(names(&dir), ["x.grant"]);
    }

    #[test]
    fn a_new_file_is_created_for_its_owner_only() {
        let dir = scratch("new");
        let path = dir.join("key");
        write(&path, b"secret").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"secret");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(names(&dir), ["key"]);
    }

    /// A read-only file is refused as an in-place write would refuse it
    /// (root may write it, and does).
    #[test]
    fn a_read_only_file_is_left_alone_unless_writable() {
        let dir = scratch("read-only");
        let path = dir.join("p.grant");
        fs::write(&path, OLD).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
        let in_place = OpenOptions::new().write(true).open(&path).is_ok();
        match write(&path, NEW.as_bytes()) {
            Ok(()) => {
                assert!(in_place, "a file this process may not write was rewritten");
                assert_eq!(fs::read_to_string(&path).unwrap(), NEW);
                let mode = fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o444);
            }
            Err(error) => {
                assert!(!in_place, "{error}");
                assert_eq!(
                    error.to_string(),
                    format!(
                        "cannot write `{}`: opening it for writing failed: permission denied; \
                         the file is unchanged",
                        path.display()
                    )
                );
                assert_eq!(fs::read_to_string(&path).unwrap(), OLD);
            }
        }
        assert_eq!(names(&dir), ["p.grant"]);
    }

    /// The documented caveat: another hard link keeps the old text.
    #[test]
    fn a_hard_link_keeps_the_old_text() {
        let dir = scratch("hardlink");
        let path = dir.join("p.grant");
        fs::write(&path, OLD).unwrap();
        fs::hard_link(&path, dir.join("other.grant")).unwrap();
        write(&path, NEW.as_bytes()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), NEW);
        assert_eq!(fs::read_to_string(dir.join("other.grant")).unwrap(), OLD);
    }
}
