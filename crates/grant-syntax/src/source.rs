//! The files of one policy: their display names, text and line tables, and
//! loading them from disk.

use std::path::{Path, PathBuf};

use crate::limits::MAX_FILE_BYTES;
use crate::span::{FileId, Span};

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
    line_starts: Vec<u32>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        let name = name.into();
        SourceFile {
            display: name.clone(),
            name,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1);
        let line_start = self.line_starts.get(line).copied().unwrap_or(0) as usize;
        let offset = (offset as usize).min(self.text.len());
        let column = self
            .text
            .get(line_start..offset)
            .map_or(0, |s| s.chars().count());
        (line + 1, column + 1)
    }
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
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
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
}
