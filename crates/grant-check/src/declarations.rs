//! The first pass: every `type`, `attr`, `default ttl` and `max ttl` of every
//! file, so that rules may use declarations from anywhere in the policy.

use crate::fnv::FnvIndexMap;
use grant_syntax::ast::{self, Item, TypeExpr};
use grant_syntax::diagnostic::{Code, Diagnostic};
use grant_syntax::parser::format_duration;
use grant_syntax::{FileId, Span, Spanned};

use crate::Checker;
use crate::fnv::FnvMap;
use crate::ir::{AttrId, Attribute, EnumType, Policy, Scalar, Type, TypeId};

const BUILTIN_TYPES: [&str; 4] = ["bool", "int", "string", "duration"];

/// Names declared by the policy, for resolving rules.
#[derive(Debug, Default)]
pub(crate) struct Scope {
    pub types: FnvIndexMap<String, EnumType>,
    /// Every declared path; `None` when its type did not resolve (uses of it
    /// are then not reported again).
    pub attrs: FnvIndexMap<String, (Span, Option<AttrId>)>,
    pub attr_list: Vec<Attribute>,
    pub default_ttl: Option<Spanned<u64>>,
    pub max_ttl: Option<Spanned<u64>>,
    pub used_attrs: Vec<bool>,
    pub used_types: Vec<bool>,
}

impl Scope {
    pub fn type_id(&self, name: &str) -> Option<TypeId> {
        self.types.get_index_of(name).map(|i| TypeId(i as u32))
    }

    pub fn enum_type(&self, id: TypeId) -> Option<&EnumType> {
        self.types.get_index(id.0 as usize).map(|(_, t)| t)
    }

    pub fn attr(&self, id: AttrId) -> Option<&Attribute> {
        self.attr_list.get(id.0 as usize)
    }

    /// The policy's declarations, without rules.
    pub fn to_policy(&self) -> Policy {
        Policy::declared(
            self.types.values().cloned().collect(),
            self.attr_list.clone(),
            self.default_ttl.as_ref().map(|t| t.value),
            self.max_ttl.as_ref().map(|t| t.value),
        )
    }

    pub fn type_name(&self, ty: Type) -> String {
        ty.name(|id| self.enum_type(id).map(|t| t.name.as_str()))
    }
}

impl Checker<'_> {
    pub(crate) fn declare(&mut self, files: &[(FileId, ast::File)]) -> Scope {
        let mut scope = Scope::default();
        // Types first: attribute declarations may name types declared later.
        for (_, file) in files {
            for item in &file.items {
                if let Item::Type(decl) = item {
                    self.declare_type(&mut scope, decl);
                }
            }
        }
        scope.used_types = vec![false; scope.types.len()];
        for (_, file) in files {
            for item in &file.items {
                match item {
                    Item::Attr(decl) => self.declare_attr(&mut scope, decl),
                    Item::DefaultTtl(setting) => {
                        self.declare_setting(&mut scope.default_ttl, setting, "default ttl");
                    }
                    Item::MaxTtl(setting) => {
                        self.declare_setting(&mut scope.max_ttl, setting, "max ttl")
                    }
                    Item::Type(_) | Item::Rule(_) => {}
                }
            }
        }
        scope.used_attrs = vec![false; scope.attr_list.len()];
        self.check_attr_prefixes(&scope);
        if let (Some(default), Some(max)) = (&scope.default_ttl, &scope.max_ttl)
            && default.value > max.value
        {
            self.report(
                Diagnostic::new(
                    Code::DefaultAboveMax,
                    default.span,
                    format!(
                        "`default ttl` of {} is above `max ttl` of {}",
                        format_duration(default.value),
                        format_duration(max.value)
                    ),
                )
                .label("above the maximum")
                .secondary(max.span, "the maximum is set here")
                .help("lower `default ttl` or raise `max ttl`"),
            );
        }
        scope
    }

    fn declare_type(&mut self, scope: &mut Scope, decl: &ast::TypeDecl) {
        let name = &decl.name.value;
        if BUILTIN_TYPES.contains(&name.as_str()) || name == "set" {
            self.report(
                Diagnostic::new(
                    Code::ReservedTypeName,
                    decl.name.span,
                    format!("`{name}` is a built-in type name"),
                )
                .label("reserved")
                .help("choose another name for the enum"),
            );
            return;
        }
        if let Some(first) = scope.types.get(name) {
            let first = first.span;
            self.report(
                Diagnostic::new(
                    Code::DuplicateType,
                    decl.name.span,
                    format!("type `{name}` is declared twice"),
                )
                .label("declared again here")
                .secondary(first, "first declared here")
                .help("each type is declared once across all files of the policy"),
            );
            return;
        }
        let mut enum_type = EnumType::new(name.clone(), decl.ordered, decl.name.span);
        let mut spans: Vec<Span> = Vec::with_capacity(decl.variants.len());
        for variant in &decl.variants {
            if let Err(first) = enum_type.add_variant(&variant.value) {
                let first = spans.get(first as usize).copied().unwrap_or(variant.span);
                self.report(
                    Diagnostic::new(
                        Code::DuplicateVariant,
                        variant.span,
                        format!("variant `{}` is listed twice in `{name}`", variant.value),
                    )
                    .label("listed again here")
                    .secondary(first, "first listed here"),
                );
                continue;
            }
            spans.push(variant.span);
        }
        scope.types.insert(name.clone(), enum_type);
    }

    fn declare_attr(&mut self, scope: &mut Scope, decl: &ast::AttrDecl) {
        let path = &decl.path.name;
        if let Some((first, _)) = scope.attrs.get(path) {
            let first = *first;
            self.report(
                Diagnostic::new(
                    Code::DuplicateAttribute,
                    decl.path.span,
                    format!("attribute `{path}` is declared twice"),
                )
                .label("declared again here")
                .secondary(first, "first declared here")
                .help("each attribute is declared once across all files of the policy"),
            );
            return;
        }
        let mut ty = self.resolve_type(scope, &decl.ty, false);
        if crate::ledger::is_reserved(path) {
            ty = ty.filter(|&ty| self.ledger_attr_fits(decl, ty));
        }
        let id = ty.map(|ty| {
            let id = AttrId(scope.attr_list.len() as u32);
            scope.attr_list.push(Attribute {
                path: path.clone(),
                ty,
                span: decl.path.span,
            });
            id
        });
        scope.attrs.insert(path.clone(), (decl.path.span, id));
    }

    /// Whether a declaration under the reserved `ledger` group names a
    /// ledger attribute with its fixed type; reports it if not.
    fn ledger_attr_fits(&mut self, decl: &ast::AttrDecl, ty: Type) -> bool {
        let path = &decl.path.name;
        let Some(reserved) = crate::ledger::attribute(path) else {
            let names = crate::ledger::ATTRIBUTES.iter().map(|a| a.path);
            let mut diagnostic = Diagnostic::new(
                Code::UnknownLedgerAttribute,
                decl.path.span,
                format!("`{path}` is not a ledger attribute"),
            )
            .label("reserved for the ledger");
            diagnostic = match self.suggester.closest(path, names) {
                Some(close) => diagnostic.help(format!(
                    "did you mean `{close}`? names under `ledger` are set by the ledger; name your own attribute otherwise"
                )),
                None => diagnostic.help(format!(
                    "the ledger sets {}; name your own attribute otherwise",
                    crate::ledger::ATTRIBUTES
                        .iter()
                        .map(|a| format!("`{}`", a.path))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            self.report(diagnostic);
            return false;
        };
        if ty == reserved.ty {
            return true;
        }
        let fixed = reserved.ty.name(|_| None);
        self.report(
            Diagnostic::new(
                Code::LedgerAttributeType,
                decl.ty.span(),
                format!("`{path}` has the fixed type `{fixed}`"),
            )
            .label(format!("not `{fixed}`"))
            .help(format!(
                "declare it `attr {path}: {fixed}`: it is {}",
                reserved.meaning
            )),
        );
        false
    }

    fn resolve_type(&mut self, scope: &mut Scope, ty: &TypeExpr, in_set: bool) -> Option<Type> {
        match ty {
            TypeExpr::Set(element, span) => {
                if in_set {
                    self.report(
                        Diagnostic::new(Code::NestedSet, *span, "a set cannot hold sets")
                            .label("set inside a set")
                            .help("sets hold `bool`, `int`, `string`, `duration` or an enum"),
                    );
                    return None;
                }
                match self.resolve_type(scope, element, true)? {
                    Type::Scalar(s) => Some(Type::Set(s)),
                    Type::Set(_) => None,
                }
            }
            TypeExpr::Named(name) => {
                let scalar = match name.value.as_str() {
                    "bool" => Scalar::Bool,
                    "int" => Scalar::Int,
                    "string" => Scalar::String,
                    "duration" => Scalar::Duration,
                    other => match scope.type_id(other) {
                        Some(id) => {
                            if let Some(used) = scope.used_types.get_mut(id.0 as usize) {
                                *used = true;
                            }
                            Scalar::Enum(id)
                        }
                        None => {
                            let candidates = BUILTIN_TYPES
                                .iter()
                                .copied()
                                .chain(scope.types.keys().map(String::as_str));
                            let mut diagnostic = Diagnostic::new(
                                Code::UnknownType,
                                name.span,
                                format!("unknown type `{other}`"),
                            )
                            .label("not a type");
                            diagnostic = match self.suggester.closest(other, candidates) {
                                _ if other == "set" => {
                                    diagnostic.help("a set names its element type: `set<string>`")
                                }
                                Some(close) => diagnostic.help(format!("did you mean `{close}`?")),
                                None => diagnostic.help(
                                    "types are `bool`, `int`, `string`, `duration`, `set<T>` and declared enums",
                                ),
                            };
                            self.report(diagnostic);
                            return None;
                        }
                    },
                };
                Some(Type::Scalar(scalar))
            }
        }
    }

    fn declare_setting(
        &mut self,
        slot: &mut Option<Spanned<u64>>,
        setting: &ast::TtlSetting,
        what: &str,
    ) {
        if let Some(first) = slot {
            let first = first.span;
            self.report(
                Diagnostic::new(
                    Code::DuplicateSetting,
                    setting.ttl.span,
                    format!("`{what}` is set twice"),
                )
                .label("set again here")
                .secondary(first, "first set here")
                .help(format!(
                    "a policy sets `{what}` at most once, in any one of its files"
                )),
            );
            return;
        }
        if setting.ttl.value == 0 {
            // Not kept: every rule would otherwise be reported against it.
            self.report(zero_ttl(setting.ttl.span));
            return;
        }
        *slot = Some(setting.ttl.clone());
    }

    /// `attr task: bool` beside `attr task.approved: bool` cannot both be
    /// given in a request's nested JSON form.
    fn check_attr_prefixes(&mut self, scope: &Scope) {
        // A trie of path segments: each path's declared prefixes are the
        // marked nodes on its way down. Linear in the paths' total length,
        // where looking each prefix up by its text would be quadratic in a
        // long path's length.
        let mut children: FnvMap<(u32, &str), u32> = FnvMap::default();
        let mut declared: Vec<Option<Span>> = vec![None];
        let mut walks: Vec<Vec<u32>> = Vec::with_capacity(scope.attrs.len());
        for (path, (span, _)) in &scope.attrs {
            let mut node = 0u32;
            let mut walk = Vec::new();
            for segment in path.split('.') {
                let next = declared.len() as u32;
                node = *children.entry((node, segment)).or_insert(next);
                if node == next {
                    declared.push(None);
                }
                walk.push(node);
            }
            if let Some(end) = declared.get_mut(node as usize) {
                *end = Some(*span);
            }
            walks.push(walk);
        }
        for ((path, (span, _)), walk) in scope.attrs.iter().zip(&walks) {
            let proper = walk.split_last().map_or(&[][..], |(_, init)| init);
            let mut prefix_end = 0;
            for (segment, node) in path.split('.').zip(proper) {
                prefix_end += segment.len();
                if let Some(Some(prefix_span)) = declared.get(*node as usize) {
                    let prefix = path.get(..prefix_end).unwrap_or("");
                    self.report(
                        Diagnostic::new(Code::AttributePrefix, *span, format!(
                            "attribute `{path}` lies under attribute `{prefix}`"
                        ))
                        .label("declared here")
                        .secondary(*prefix_span, format!("`{prefix}` is declared here"))
                        .help(format!(
                            "a request cannot give `{prefix}` both a value and nested attributes; rename one of them"
                        )),
                    );
                }
                prefix_end += 1;
            }
        }
    }
}

pub(crate) fn zero_ttl(span: Span) -> Diagnostic {
    Diagnostic::new(Code::ZeroTtl, span, "a ttl of zero grants nothing")
        .label("zero")
        .help("use a positive duration, or a deny rule to refuse access")
}
