//! The files of one policy: their display names, text and line tables, and
//! loading them from disk: the directory rule (which files make a policy)
//! and the one traversal of policy directories ([`walk`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::chars::printable;
use crate::limits::{MAX_FILE_BYTES, MAX_WALK_ENTRIES};
use crate::span::{FileId, Span, clamp_u32};

/// One source file of a policy.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name used in diagnostics and generated rule ids: the path relative
    /// to the policy root with `/` separators, or the file name for a one-file
    /// policy.
    pub name: String,
    /// Where the file is shown in diagnostics: its path as the user reached
    /// it (`examples/data/policy.grant`), or `name` for in-memory sources.
    pub display: String,
    pub text: String,
    /// Byte offset of each line's start. Lines end at LF only
    /// ([`crate::chars`]).
    line_starts: Vec<u32>,
    /// For text that is not all ASCII: the number of characters before each
    /// [`CHECKPOINT_BYTES`] block, so that a column costs at most one block
    /// scan however long its line is. Empty for ASCII text.
    char_checkpoints: Vec<u32>,
}

/// Block size of [`SourceFile`]'s character checkpoints.
const CHECKPOINT_BYTES: usize = 256;

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .map(clamp_u32)
            .collect();
        let char_checkpoints = if text.is_ascii() {
            Vec::new()
        } else {
            let mut chars = 0u32;
            text.as_bytes()
                .chunks(CHECKPOINT_BYTES)
                .map(|block| {
                    let before = chars;
                    chars += block.iter().filter(|&&b| is_char_start(b)).count() as u32;
                    before
                })
                .collect()
        };
        let name = name.into();
        SourceFile {
            display: name.clone(),
            name,
            text,
            line_starts,
            char_checkpoints,
        }
    }

    /// 0-based index of the line holding byte `offset`.
    pub fn line_index(&self, offset: u32) -> usize {
        self.line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1)
    }

    /// The byte range of line `index` (0-based), without its line ending
    /// (LF, or CRLF); empty past the last line.
    pub fn line_range(&self, index: usize) -> std::ops::Range<usize> {
        let Some(&start) = self.line_starts.get(index) else {
            return self.text.len()..self.text.len();
        };
        let start = start as usize;
        let mut end = self
            .line_starts
            .get(index + 1)
            .map_or(self.text.len(), |&next| (next as usize).saturating_sub(1));
        if end > start && self.text.as_bytes().get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        start..end.max(start)
    }

    /// 1-based line and column (in characters) of a byte offset. A
    /// byte-order mark opening the file is not counted.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let line = self.line_index(offset);
        let line_start = self.line_starts.get(line).copied().unwrap_or(0) as usize;
        let offset = (offset as usize).min(self.text.len());
        let mut column = self
            .chars_before(offset)
            .saturating_sub(self.chars_before(line_start));
        if line_start == 0 && offset > 0 && self.text.starts_with(crate::chars::BYTE_ORDER_MARK) {
            column -= 1;
        }
        (line + 1, column + 1)
    }

    /// Characters that start before byte `offset`.
    fn chars_before(&self, offset: usize) -> usize {
        if self.char_checkpoints.is_empty() {
            return offset;
        }
        let block = offset / CHECKPOINT_BYTES;
        let counted = self.char_checkpoints.get(block).copied().unwrap_or(0) as usize;
        let rest = self
            .text
            .as_bytes()
            .get(block * CHECKPOINT_BYTES..offset)
            .unwrap_or(&[]);
        counted + rest.iter().filter(|&&b| is_char_start(b)).count()
    }
}

/// Whether a UTF-8 byte starts a character (is not a continuation byte).
fn is_char_start(byte: u8) -> bool {
    byte & 0xC0 != 0x80
}

/// All files of one policy, indexed by [`FileId`], in sorted path order.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    /// Adds a file; callers add files in path order (the policy hash and
    /// generated rule ids depend on it).
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let id = FileId(clamp_u32(self.files.len()));
        self.files.push(SourceFile::new(name, text));
        id
    }

    /// Like [`SourceMap::add`], shown in diagnostics as `display`.
    pub fn add_with_display(
        &mut self,
        name: impl Into<String>,
        display: impl Into<String>,
        text: impl Into<String>,
    ) -> FileId {
        let id = self.add(name, text);
        if let Some(file) = self.files.last_mut() {
            file.display = display.into();
        }
        id
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn files(&self) -> impl ExactSizeIterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// `file:line:col` of the start of a span, for one-line messages.
    pub fn location(&self, span: Span) -> String {
        match self.get(span.file) {
            Some(file) => {
                let (line, col) = file.line_col(span.start);
                format!("{}:{line}:{col}", file.display)
            }
            None => "<unknown>".to_string(),
        }
    }

    /// The text a span covers, or "" when it does not lie in a file.
    pub fn snippet(&self, span: Span) -> &str {
        self.get(span.file)
            .and_then(|f| f.text.get(span.range()))
            .unwrap_or("")
    }

    /// Loads one policy by the directory rule (docs/language.md, "Policies
    /// and files"): a `.grant` file, or a directory that directly holds
    /// `.grant` files, with every `.grant` file under it in sorted path
    /// order. A directory that holds none itself holds the policies below
    /// it, and is refused ([`LoadError::SeveralPolicies`]) when there is more
    /// than one: separate policies are never merged.
    pub fn load(path: &Path) -> Result<SourceMap, LoadError> {
        let found = discover_policies(path)?;
        match found.policies.as_slice() {
            [one] => SourceMap::read(one),
            policies => Err(LoadError::SeveralPolicies {
                path: path.to_path_buf(),
                policies: policies.iter().map(|p| p.path.clone()).collect(),
            }),
        }
    }

    /// Reads the files of a policy [`discover_policies`] found.
    pub fn read(policy: &FoundPolicy) -> Result<SourceMap, LoadError> {
        let mut map = SourceMap::new();
        for file in &policy.files {
            let name = if policy.is_dir {
                display_name(file.strip_prefix(&policy.path).unwrap_or(file))
            } else {
                file.file_name()
                    .map_or_else(|| display_name(file), |n| display_name(Path::new(n)))
            };
            map.add_with_display(name, file.display().to_string(), read_source(file)?);
        }
        Ok(map)
    }
}

/// A policy could not be read: usage and I/O problems, distinct from
/// diagnostics about the policy text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("cannot read `{}`: {message}", shown(path))]
    Io { path: PathBuf, message: String },
    #[error(
        "`{}` is not valid UTF-8 (first invalid byte at offset {offset})",
        shown(path)
    )]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error(
        "`{}` is {size} bytes, over the limit of {limit} bytes for one policy file",
        shown(path)
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: usize,
    },
    #[error("no `.grant` files under `{}`{}", shown(path), hidden_note(*hidden))]
    NoGrantFiles {
        path: PathBuf,
        /// Hidden entries skipped under it (names starting with `.`).
        hidden: usize,
    },
    /// A FIFO, socket or device where a file was to be read: opening it
    /// could block forever, so it is refused before it is opened.
    #[error("`{}` is {kind}, not a regular file", shown(path))]
    NotAFile { path: PathBuf, kind: &'static str },
    /// A symbolic link whose target does not exist. Skipping it could drop
    /// a directory of rules, so it is an error whatever its name.
    #[error(
        "`{}` is a broken symbolic link: its target `{}` does not exist",
        shown(path),
        shown(target)
    )]
    BrokenLink { path: PathBuf, target: PathBuf },
    /// A directory reached again inside itself, through a symbolic link
    /// (or a bind mount).
    #[error("`{}`{} leads back to `{}`, a directory that contains it: a directory loop", shown(link), link_note(target.as_deref()), shown(ancestor))]
    Loop {
        link: PathBuf,
        /// The link's own text, when `link` is a symbolic link.
        target: Option<PathBuf>,
        ancestor: PathBuf,
    },
    /// A tree with more entries than a walk looks at
    /// ([`crate::limits::MAX_WALK_ENTRIES`]).
    #[error(
        "`{}` holds more than {limit} entries (symbolic links may reach the same directories along many paths); a policy tree is expected to be far smaller",
        shown(path)
    )]
    TooManyEntries { path: PathBuf, limit: usize },
    /// A directory that holds no `.grant` file itself but several policies
    /// below it, where one policy is needed.
    #[error("`{}` holds {} separate policies, not one: {}; pass one of them", shown(path), policies.len(), policy_list(policies))]
    SeveralPolicies {
        path: PathBuf,
        policies: Vec<PathBuf>,
    },
}

impl LoadError {
    /// A read of `path` failed.
    pub fn io(path: &Path, error: &io::Error) -> LoadError {
        LoadError::Io {
            path: path.to_path_buf(),
            message: describe_io(error),
        }
    }
}

/// An I/O error in words: lowercase, as the rest of a message. Every
/// message of Grant's about a failed read or write says it this way.
pub fn describe_io(error: &io::Error) -> String {
    let from_os = error.raw_os_error().is_some();
    match error.kind() {
        io::ErrorKind::NotFound if from_os => "no such file or directory".to_string(),
        io::ErrorKind::PermissionDenied if from_os => "permission denied".to_string(),
        _ => {
            // OS messages start with a capital ("File too large (os error
            // 27)"); they follow a colon here.
            let text = error.to_string();
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
                    first.to_lowercase().chain(text.chars().skip(1)).collect()
                }
                _ => text,
            }
        }
    }
}

/// A path for a message: escaped, so that a file name cannot write to the
/// terminal.
fn shown(path: &Path) -> String {
    printable(&path.display().to_string()).into_owned()
}

fn hidden_note(hidden: usize) -> String {
    match hidden {
        0 => String::new(),
        1 => " (1 hidden entry, whose name starts with `.`, was skipped)".to_string(),
        n => format!(" ({n} hidden entries, whose names start with `.`, were skipped)"),
    }
}

fn link_note(target: Option<&Path>) -> String {
    target.map_or_else(String::new, |t| {
        format!(" (a symbolic link to `{}`)", shown(t))
    })
}

/// Policies named in an error: the first few, and how many more.
fn policy_list(policies: &[PathBuf]) -> String {
    const SHOWN: usize = 5;
    let mut names: Vec<String> = policies
        .iter()
        .take(SHOWN)
        .map(|p| format!("`{}`", shown(p)))
        .collect();
    if policies.len() > SHOWN {
        names.push(format!("{} more", policies.len() - SHOWN));
    }
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// What is at a path, symbolic links followed.
enum Kind {
    File,
    Dir(std::fs::Metadata),
    /// A FIFO, socket or device, named for messages.
    Special(&'static str),
}

/// The kind of what `path` names, following symbolic links; a link to
/// nothing is [`LoadError::BrokenLink`].
fn kind(path: &Path) -> Result<Kind, LoadError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(Kind::Dir(meta)),
        Ok(meta) if meta.is_file() => Ok(Kind::File),
        Ok(meta) => Ok(Kind::Special(special_kind(&meta.file_type()))),
        Err(error) if error.kind() == io::ErrorKind::NotFound => match std::fs::read_link(path) {
            Ok(target) => Err(LoadError::BrokenLink {
                path: path.to_path_buf(),
                target,
            }),
            Err(_) => Err(LoadError::io(path, &error)),
        },
        Err(error) => Err(LoadError::io(path, &error)),
    }
}

/// `a FIFO (named pipe)`: what a file that is neither a regular file nor a
/// directory is.
fn special_kind(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
    }
    let _ = file_type;
    "a special file"
}

/// Reads one source file, enforcing the size limit before reading it whole.
/// Anything but a regular file (a FIFO, a device) is refused before it is
/// opened, and again once open, so that reading never blocks.
pub fn read_source(path: &Path) -> Result<String, LoadError> {
    match kind(path)? {
        Kind::File => {}
        Kind::Dir(_) => {
            return Err(LoadError::NotAFile {
                path: path.to_path_buf(),
                kind: "a directory",
            });
        }
        Kind::Special(kind) => {
            return Err(LoadError::NotAFile {
                path: path.to_path_buf(),
                kind,
            });
        }
    }
    let file = std::fs::File::open(path).map_err(|e| LoadError::io(path, &e))?;
    let meta = file.metadata().map_err(|e| LoadError::io(path, &e))?;
    if !meta.is_file() {
        // Replaced between the check and the open.
        return Err(LoadError::NotAFile {
            path: path.to_path_buf(),
            kind: special_kind(&meta.file_type()),
        });
    }
    let limit = MAX_FILE_BYTES as u64;
    let too_large = |size: u64| LoadError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: MAX_FILE_BYTES,
    };
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    // The file may grow after the check: read no more than the limit.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| LoadError::io(path, &e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| LoadError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// What [`walk`] found under a directory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Walk {
    /// The wanted files, in sorted path order, as reached from the root
    /// (through symbolic links, not resolved).
    pub files: Vec<PathBuf>,
    /// Hidden entries skipped (names starting with `.`) that would
    /// otherwise have been read: directories, and wanted files.
    pub hidden: Vec<PathBuf>,
}

/// Every file under the directory `root` whose path `wanted` accepts, in
/// sorted path order. The one traversal of policy directories, so that
/// every command sees the same files:
///
/// - symbolic links are followed, to directories too; a directory reached
///   again inside itself is [`LoadError::Loop`], and a link to nothing is
///   [`LoadError::BrokenLink`], whatever its name (it might have been a
///   directory of rules);
/// - entries whose names start with `.` (hidden directories, editor lock
///   files such as `.#policy.grant`) are skipped, and listed in
///   [`Walk::hidden`];
/// - a wanted name that is a FIFO, socket or device is
///   [`LoadError::NotAFile`], before anything opens it; a directory with a
///   wanted name is walked as a directory.
pub fn walk(root: &Path, wanted: &dyn Fn(&Path) -> bool) -> Result<Walk, LoadError> {
    let Kind::Dir(meta) = kind(root)? else {
        return Err(LoadError::io(root, &io::Error::other("not a directory")));
    };
    let mut walk = Walk::default();
    // The directories from the root to the one being read: a directory
    // that is one of them is a loop.
    let mut stack = vec![Frame::open(root, dir_id(root, &meta))?];
    let mut seen = 0usize;
    while let Some(frame) = stack.last_mut() {
        let Some(path) = frame.entries.next() else {
            stack.pop();
            continue;
        };
        seen += 1;
        if seen > MAX_WALK_ENTRIES {
            return Err(LoadError::TooManyEntries {
                path: root.to_path_buf(),
                limit: MAX_WALK_ENTRIES,
            });
        }
        let hidden = path
            .file_name()
            .is_some_and(|name| name.as_encoded_bytes().starts_with(b"."));
        if hidden {
            let is_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
            if is_dir || wanted(&path) {
                walk.hidden.push(path);
            }
            continue;
        }
        match kind(&path)? {
            Kind::Dir(meta) => {
                let id = dir_id(&path, &meta);
                if let Some(ancestor) = stack.iter().find(|f| f.id == id) {
                    return Err(LoadError::Loop {
                        target: std::fs::read_link(&path).ok(),
                        ancestor: ancestor.path.clone(),
                        link: path,
                    });
                }
                stack.push(Frame::open(&path, id)?);
            }
            Kind::File if wanted(&path) => walk.files.push(path),
            Kind::Special(kind) if wanted(&path) => {
                return Err(LoadError::NotAFile { path, kind });
            }
            Kind::File | Kind::Special(_) => {}
        }
    }
    walk.files.sort();
    walk.hidden.sort();
    Ok(walk)
}

/// A directory being walked: who it is, and its entries still to see.
struct Frame {
    id: DirId,
    path: PathBuf,
    entries: std::vec::IntoIter<PathBuf>,
}

impl Frame {
    fn open(path: &Path, id: DirId) -> Result<Frame, LoadError> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| LoadError::io(path, &e))? {
            entries.push(entry.map_err(|e| LoadError::io(path, &e))?.path());
        }
        // Sorted, so that the first error found is always the same one.
        entries.sort();
        Ok(Frame {
            id,
            path: path.to_path_buf(),
            entries: entries.into_iter(),
        })
    }
}

/// What makes a directory itself, whatever path reaches it.
#[cfg(unix)]
type DirId = (u64, u64);
#[cfg(not(unix))]
type DirId = PathBuf;

#[cfg(unix)]
fn dir_id(_path: &Path, meta: &std::fs::Metadata) -> DirId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn dir_id(path: &Path, _meta: &std::fs::Metadata) -> DirId {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Every `.grant` file under `dir`, as [`walk`] finds them.
pub fn grant_files_under(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    walk(dir, &is_grant_file).map(|walk| walk.files)
}

/// A policy found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPolicy {
    /// The `.grant` file, or the directory, as reached from the path given.
    pub path: PathBuf,
    /// Its files, in sorted path order.
    pub files: Vec<PathBuf>,
    /// Whether it is a directory (its files are named relative to it).
    pub is_dir: bool,
}

/// What [`discover_policies`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// In sorted path order.
    pub policies: Vec<FoundPolicy>,
    /// Hidden entries skipped ([`Walk::hidden`]).
    pub hidden: Vec<PathBuf>,
}

/// The policies at `path`, by the directory rule: a file is one policy
/// (whatever its name: the user named it); a directory that directly holds
/// `.grant` files is one policy, with every `.grant` file under it; one
/// that holds none holds the policies below it, each the shallowest
/// directory that directly holds a `.grant` file. [`SourceMap::load`]
/// applies the same rule, refusing several.
pub fn discover_policies(path: &Path) -> Result<Discovery, LoadError> {
    match kind(path)? {
        Kind::File => {
            return Ok(Discovery {
                policies: vec![FoundPolicy {
                    path: path.to_path_buf(),
                    files: vec![path.to_path_buf()],
                    is_dir: false,
                }],
                hidden: Vec::new(),
            });
        }
        Kind::Special(kind) => {
            return Err(LoadError::NotAFile {
                path: path.to_path_buf(),
                kind,
            });
        }
        Kind::Dir(_) => {}
    }
    let walk = walk(path, &is_grant_file)?;
    if walk.files.is_empty() {
        return Err(LoadError::NoGrantFiles {
            path: path.to_path_buf(),
            hidden: walk.hidden.len(),
        });
    }
    let holders: BTreeSet<&Path> = walk.files.iter().filter_map(|f| f.parent()).collect();
    // Sorted order puts an ancestor before its descendants, so each holder
    // is either under a root kept before it or a root itself.
    let mut roots: BTreeSet<&Path> = BTreeSet::new();
    for holder in holders {
        if !holder.ancestors().any(|a| roots.contains(a)) {
            roots.insert(holder);
        }
    }
    let mut policies: BTreeMap<&Path, Vec<PathBuf>> = BTreeMap::new();
    for file in &walk.files {
        // Its root: each file has one, since its own directory holds a
        // `.grant` file.
        if let Some(root) = file.ancestors().skip(1).find(|a| roots.contains(a)) {
            policies.entry(root).or_default().push(file.clone());
        }
    }
    Ok(Discovery {
        policies: policies
            .into_iter()
            .map(|(root, files)| FoundPolicy {
                path: root.to_path_buf(),
                files,
                is_dir: true,
            })
            .collect(),
        hidden: walk.hidden,
    })
}

pub fn is_grant_file(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "grant")
}

fn display_name(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_from_one() {
        let file = SourceFile::new("a.grant", "ab\n\u{e9}x\n");
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(1), (1, 2));
        assert_eq!(file.line_col(3), (2, 1));
        // `x` is after a two-byte character: column 2, not 3.
        assert_eq!(file.line_col(5), (2, 2));
        assert_eq!(file.line_col(7), (3, 1));
    }

    #[test]
    fn columns_on_long_non_ascii_lines_use_checkpoints() {
        // Characters of 1, 2, 3 and 4 bytes, across many checkpoint blocks.
        let line: String = "a\u{e9}\u{4e2d}\u{1F600}".repeat(300);
        let file = SourceFile::new("a.grant", format!("x\n{line}\n"));
        let mut offset = 2;
        for (i, c) in line.chars().enumerate() {
            assert_eq!(file.line_col(offset as u32), (2, i + 1));
            offset += c.len_utf8();
        }
        assert_eq!(file.line_col(offset as u32), (2, 1201));
    }

    #[test]
    fn a_byte_order_mark_takes_no_column_and_crlf_ends_a_line() {
        let file = SourceFile::new("a.grant", "\u{feff}ab\r\ncd");
        assert_eq!(file.line_col(3), (1, 1));
        assert_eq!(file.line_col(4), (1, 2));
        assert_eq!(file.line_range(0), 0..5);
        assert_eq!(file.line_col(7), (2, 1));
        // A lone CR does not end a line.
        let file = SourceFile::new("a.grant", "a\rb\nc");
        assert_eq!(file.line_col(2), (1, 3));
        assert_eq!(file.line_range(0), 0..3);
    }
}

/// The traversal and the directory rule, on real files built by each test.
#[cfg(test)]
#[cfg(unix)]
mod disk_tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const RULE: &str = "allow tool \"x\" ttl 1m\n";

    /// A fresh directory holding `files` (a name ending in `/` is an empty
    /// directory).
    fn tree(test: &str, files: &[&str]) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("grant-source-{}", std::process::id()))
            .join(test);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in files {
            let path = dir.join(name);
            if name.ends_with('/') {
                std::fs::create_dir_all(&path).unwrap();
            } else {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, RULE).unwrap();
            }
        }
        dir
    }

    fn relative(dir: &Path, paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| display_name(p.strip_prefix(dir).unwrap()))
            .collect()
    }

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn directory_links_are_followed() {
        let dir = tree("dir-links", &["shared/deny.grant", "policy/allow.grant"]);
        symlink("../shared", dir.join("policy/shared")).unwrap();
        let files = grant_files_under(&dir.join("policy")).unwrap();
        assert_eq!(
            relative(&dir, &files),
            ["policy/allow.grant", "policy/shared/deny.grant"]
        );
        // Named relative to the policy, through the link.
        let map = SourceMap::load(&dir.join("policy")).unwrap();
        let names: Vec<&str> = map.files().map(|(_, f)| f.name.as_str()).collect();
        assert_eq!(names, ["allow.grant", "shared/deny.grant"]);
    }

    #[test]
    fn a_directory_loop_is_an_error_naming_the_link() {
        let dir = tree("loop", &["p/a/rules.grant"]);
        symlink("..", dir.join("p/a/loop")).unwrap();
        let error = SourceMap::load(&dir.join("p")).unwrap_err();
        assert!(matches!(error, LoadError::Loop { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!(
                "`{0}/p/a/loop` (a symbolic link to `..`) leads back to `{0}/p`, a directory \
                 that contains it: a directory loop",
                dir.display()
            )
        );
        // Reaching one directory twice, side by side, is no loop.
        let dir = tree("diamond", &["shared/deny.grant", "p/x/"]);
        symlink("../../shared", dir.join("p/x/one")).unwrap();
        symlink("../../shared", dir.join("p/x/two")).unwrap();
        let files = grant_files_under(&dir.join("p")).unwrap();
        assert_eq!(
            relative(&dir, &files),
            ["p/x/one/deny.grant", "p/x/two/deny.grant"]
        );
    }

    #[test]
    fn links_that_multiply_paths_stop_at_the_entry_limit() {
        // Each level links twice to the next: 2^24 paths to the last level.
        let dir = tree("fan-out", &["p/rules.grant"]);
        for level in 0..24 {
            std::fs::create_dir_all(dir.join(format!("l{level}"))).unwrap();
        }
        symlink(dir.join("l0"), dir.join("p/a")).unwrap();
        symlink(dir.join("l0"), dir.join("p/b")).unwrap();
        for level in 0..23 {
            let next = dir.join(format!("l{}", level + 1));
            symlink(&next, dir.join(format!("l{level}/a"))).unwrap();
            symlink(&next, dir.join(format!("l{level}/b"))).unwrap();
        }
        let error = bounded(move || SourceMap::load(&dir.join("p")).unwrap_err());
        assert!(
            matches!(
                error,
                LoadError::TooManyEntries {
                    limit: MAX_WALK_ENTRIES,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn hidden_entries_are_skipped_and_listed() {
        let dir = tree(
            "hidden",
            &[
                "p/rules.grant",
                "p/.#rules.grant",
                "p/.old/deny.grant",
                "p/.notes",
            ],
        );
        let walk = walk(&dir.join("p"), &is_grant_file).unwrap();
        assert_eq!(relative(&dir, &walk.files), ["p/rules.grant"]);
        // `.notes` would not have been read anyway.
        assert_eq!(relative(&dir, &walk.hidden), ["p/.#rules.grant", "p/.old"]);
        let found = discover_policies(&dir.join("p")).unwrap();
        assert_eq!(found.hidden, walk.hidden);
        // Only hidden files: none found, and the error says why.
        let dir = tree("only-hidden", &["p/.#rules.grant"]);
        let error = SourceMap::load(&dir.join("p")).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("` (1 hidden entry, whose name starts with `.`, was skipped)"),
            "{error}"
        );
        // A hidden path given by name is read: the user named it.
        let dir = tree("named-hidden", &[".p.grant"]);
        assert_eq!(SourceMap::load(&dir.join(".p.grant")).unwrap().len(), 1);
    }

    /// `f()`, or a failed test if it takes over ten seconds (opening a FIFO
    /// blocks until a writer comes, which none will).
    fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || send.send(f()));
        receive
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("blocked: a FIFO was opened")
    }

    #[test]
    fn special_files_are_refused_before_they_are_opened() {
        let dir = tree("special", &["p/rules.grant", "q/"]);
        // A FIFO would block a reader forever: it is never opened.
        mkfifo(&dir.join("p/x.grant"));
        let p = dir.join("p");
        let error = bounded(move || SourceMap::load(&p)).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "`{}/p/x.grant` is a FIFO (named pipe), not a regular file",
                dir.display()
            )
        );
        let fifo = dir.join("p/x.grant");
        let error = bounded(move || read_source(&fifo)).unwrap_err();
        assert!(matches!(error, LoadError::NotAFile { .. }), "{error:?}");
        let fifo = dir.join("p/x.grant");
        let error = bounded(move || discover_policies(&fifo)).unwrap_err();
        assert!(
            error.to_string().contains("is a FIFO (named pipe)"),
            "{error}"
        );
        // Under another name, it is not read, so it is not in the way.
        std::fs::rename(dir.join("p/x.grant"), dir.join("p/x.fifo")).unwrap();
        assert_eq!(SourceMap::load(&dir.join("p")).unwrap().len(), 1);

        let socket = std::os::unix::net::UnixListener::bind(dir.join("q/s.grant")).unwrap();
        let error = grant_files_under(&dir.join("q")).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("s.grant` is a socket, not a regular file")
        );
        drop(socket);

        // A device, given directly or through a link with a policy's name.
        let error = read_source(Path::new("/dev/null")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`/dev/null` is a character device, not a regular file"
        );
        let dir = tree("device", &["p/rules.grant"]);
        symlink("/dev/null", dir.join("p/null.grant")).unwrap();
        let error = SourceMap::load(&dir.join("p")).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("null.grant` is a character device, not a regular file"),
            "{error}"
        );
    }

    #[test]
    fn a_directory_named_like_a_policy_file_is_a_directory() {
        let dir = tree("grant-dir", &["p/x.grant/rules.grant"]);
        let found = discover_policies(&dir.join("p")).unwrap();
        assert_eq!(found.policies.len(), 1);
        assert_eq!(
            relative(&dir, &found.policies[0].files),
            ["p/x.grant/rules.grant"]
        );
        // `p` holds no `.grant` file itself: the policy is `p/x.grant`.
        assert_eq!(
            relative(&dir, &[found.policies[0].path.clone()]),
            ["p/x.grant"]
        );
    }

    #[test]
    fn a_broken_link_is_an_error_whatever_its_name() {
        for name in ["gone.grant", "shared"] {
            let dir = tree(&format!("broken-{name}"), &["p/rules.grant"]);
            symlink("../nowhere", dir.join("p").join(name)).unwrap();
            let error = SourceMap::load(&dir.join("p")).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "`{}/p/{name}` is a broken symbolic link: its target `../nowhere` does not exist",
                    dir.display()
                )
            );
        }
    }

    #[test]
    fn the_directory_rule() {
        let dir = tree(
            "rule",
            &[
                "all/data/schema.grant",
                "all/data/rules/reads.grant",
                "all/github/policy.grant",
                "all/notes.txt",
            ],
        );
        let found = discover_policies(&dir.join("all")).unwrap();
        let paths: Vec<PathBuf> = found.policies.iter().map(|p| p.path.clone()).collect();
        assert_eq!(relative(&dir, &paths), ["all/data", "all/github"]);
        assert_eq!(
            relative(&dir, &found.policies[0].files),
            ["all/data/rules/reads.grant", "all/data/schema.grant"]
        );
        assert!(found.policies.iter().all(|p| p.is_dir));
        // One policy is needed: the container is refused, and names them.
        let error = SourceMap::load(&dir.join("all")).unwrap_err();
        assert!(
            matches!(error, LoadError::SeveralPolicies { .. }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "`{0}/all` holds 2 separate policies, not one: `{0}/all/data` and \
                 `{0}/all/github`; pass one of them",
                dir.display()
            )
        );
        // A directory that holds a `.grant` file is one policy, however
        // many sub-directories hold more.
        std::fs::write(dir.join("all/top.grant"), RULE).unwrap();
        let found = discover_policies(&dir.join("all")).unwrap();
        assert_eq!(found.policies.len(), 1);
        assert_eq!(SourceMap::load(&dir.join("all")).unwrap().len(), 4);
    }

    #[test]
    fn many_policies_are_named_in_part() {
        let names: Vec<String> = (0..8).map(|i| format!("c/p{i}/a.grant")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let dir = tree("many", &names);
        let error = SourceMap::load(&dir.join("c")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("holds 8 separate policies"), "{message}");
        assert!(
            message.contains("/c/p4` and 3 more; pass one of them"),
            "{message}"
        );
    }
}
