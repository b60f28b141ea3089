//! The files of one policy: their display names, text and line tables, and
//! loading them from disk.

use std::path::{Path, PathBuf};

use crate::limits::MAX_FILE_BYTES;
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

    /// Loads a policy: one `.grant` file, or every `.grant` file under a
    /// directory in sorted path order.
    pub fn load(path: &Path) -> Result<SourceMap, LoadError> {
        let meta = std::fs::metadata(path).map_err(|e| LoadError::io(path, &e))?;
        let mut map = SourceMap::new();
        if meta.is_dir() {
            let files = grant_files_under(path)?;
            if files.is_empty() {
                return Err(LoadError::NoGrantFiles {
                    path: path.to_path_buf(),
                });
            }
            for file in files {
                let name = display_name(file.strip_prefix(path).unwrap_or(&file));
                map.add_with_display(name, file.display().to_string(), read_source(&file)?);
            }
        } else {
            let name = path
                .file_name()
                .map_or_else(|| display_name(path), |n| display_name(Path::new(n)));
            map.add_with_display(name, path.display().to_string(), read_source(path)?);
        }
        Ok(map)
    }
}

/// A policy could not be read: usage and I/O problems, distinct from
/// diagnostics about the policy text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("cannot read `{}`: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("`{}` is not valid UTF-8 (first invalid byte at offset {offset})", path.display())]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("`{}` is {size} bytes, over the limit of {limit} bytes for one policy file", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: usize,
    },
    #[error("no `.grant` files under `{}`", path.display())]
    NoGrantFiles { path: PathBuf },
}

impl LoadError {
    fn io(path: &Path, error: &std::io::Error) -> LoadError {
        let message = match error.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => error.to_string(),
        };
        LoadError::Io {
            path: path.to_path_buf(),
            message,
        }
    }
}

/// Reads one source file, enforcing the size limit before reading it whole.
pub fn read_source(path: &Path) -> Result<String, LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| LoadError::io(path, &e))?;
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(|e| LoadError::io(path, &e))?;
    String::from_utf8(bytes).map_err(|e| LoadError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Every `.grant` file under `dir`, recursively, in sorted path order.
pub fn grant_files_under(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| LoadError::io(&current, &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| LoadError::io(&current, &e))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(|e| LoadError::io(&path, &e))?;
            if file_type.is_dir() {
                pending.push(path);
            } else if is_grant_file(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The policies under `path`, as the CLI finds them: a file is one policy;
/// under a directory, each shallowest directory that directly holds a
/// `.grant` file is one policy, with every `.grant` file beneath it.
pub fn discover_policies(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| LoadError::io(path, &e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let files = grant_files_under(path)?;
    if files.is_empty() {
        return Err(LoadError::NoGrantFiles {
            path: path.to_path_buf(),
        });
    }
    let mut roots: Vec<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    roots.sort();
    roots.dedup();
    let mut shallowest: Vec<PathBuf> = Vec::new();
    for root in roots {
        // Sorted order puts an ancestor before its descendants.
        if !shallowest.iter().any(|kept| root.starts_with(kept)) {
            shallowest.push(root);
        }
    }
    Ok(shallowest)
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
